// RwLock: a reader-writer lock that lets a waiting writer in before new readers.
//
// std::shared_mutex on glibc is pthread's default rwlock, which prefers readers: while
// readers keep overlapping, a writer waits forever (topic_bench measured a subscribe stuck
// for minutes behind seven threads matching PUBLISH topics). This one asks glibc for writer
// preference (PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP): once a writer waits, new readers
// queue behind it. A thread must not take the shared lock twice (it could wait behind a
// writer that waits for it). Meets the SharedMutex requirements, so std::shared_lock and
// std::unique_lock work with it.
#pragma once

#include <pthread.h>

#include "common/thread_annotations.h"

namespace mqttd {

class MQTTD_CAPABILITY("rwlock") RwLock {
public:
    RwLock() {
        pthread_rwlockattr_t attr;
        pthread_rwlockattr_init(&attr);
        pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
        pthread_rwlock_init(&lock_, &attr);
        pthread_rwlockattr_destroy(&attr);
    }
    ~RwLock() { pthread_rwlock_destroy(&lock_); }
    RwLock(const RwLock&) = delete;
    RwLock& operator=(const RwLock&) = delete;

    void lock() MQTTD_ACQUIRE() { pthread_rwlock_wrlock(&lock_); }
    bool try_lock() MQTTD_TRY_ACQUIRE(true) { return pthread_rwlock_trywrlock(&lock_) == 0; }
    void unlock() MQTTD_RELEASE() { pthread_rwlock_unlock(&lock_); }
    void lock_shared() MQTTD_ACQUIRE_SHARED() { pthread_rwlock_rdlock(&lock_); }
    bool try_lock_shared() MQTTD_TRY_ACQUIRE(true) { return pthread_rwlock_tryrdlock(&lock_) == 0; }
    void unlock_shared() MQTTD_RELEASE_SHARED() { pthread_rwlock_unlock(&lock_); }

private:
    pthread_rwlock_t lock_;
};

// Scoped holds of an RwLock that the thread-safety analysis understands.
class MQTTD_SCOPED_CAPABILITY ReaderLock {
public:
    explicit ReaderLock(RwLock& l) MQTTD_ACQUIRE_SHARED(l) : l_(l) { l_.lock_shared(); }
    ~ReaderLock() MQTTD_RELEASE() { l_.unlock_shared(); }
    ReaderLock(const ReaderLock&) = delete;
    ReaderLock& operator=(const ReaderLock&) = delete;

private:
    RwLock& l_;
};

class MQTTD_SCOPED_CAPABILITY WriterLock {
public:
    explicit WriterLock(RwLock& l) MQTTD_ACQUIRE(l) : l_(l) { l_.lock(); }
    ~WriterLock() MQTTD_RELEASE() { l_.unlock(); }
    WriterLock(const WriterLock&) = delete;
    WriterLock& operator=(const WriterLock&) = delete;

private:
    RwLock& l_;
};

}  // namespace mqttd

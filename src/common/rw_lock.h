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

namespace mqttd {

class RwLock {
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

    void lock() { pthread_rwlock_wrlock(&lock_); }
    bool try_lock() { return pthread_rwlock_trywrlock(&lock_) == 0; }
    void unlock() { pthread_rwlock_unlock(&lock_); }
    void lock_shared() { pthread_rwlock_rdlock(&lock_); }
    bool try_lock_shared() { return pthread_rwlock_tryrdlock(&lock_) == 0; }
    void unlock_shared() { pthread_rwlock_unlock(&lock_); }

private:
    pthread_rwlock_t lock_;
};

}  // namespace mqttd

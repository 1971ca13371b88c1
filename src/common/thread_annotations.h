// Clang's thread-safety analysis (-Wthread-safety, on in clang builds): data that needs a lock
// says which (MQTTD_GUARDED_BY), and the lock types say what they hold, so a member read
// without its lock fails the clang build (STYLE.md 10; LevelDB's port/thread_annotations.h).
// With other compilers the macros are empty.
//
// Mutex and MutexLock wrap std::mutex / std::lock_guard with the annotations; RwLock
// (rw_lock.h) has ReaderLock / WriterLock. std::lock_guard on an annotated type is not
// understood by the analysis: use these.
#pragma once

#include <mutex>

#if defined(__clang__)
#define MQTTD_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define MQTTD_THREAD_ANNOTATION(x)
#endif

#define MQTTD_CAPABILITY(x) MQTTD_THREAD_ANNOTATION(capability(x))
#define MQTTD_SCOPED_CAPABILITY MQTTD_THREAD_ANNOTATION(scoped_lockable)
#define MQTTD_GUARDED_BY(x) MQTTD_THREAD_ANNOTATION(guarded_by(x))
#define MQTTD_PT_GUARDED_BY(x) MQTTD_THREAD_ANNOTATION(pt_guarded_by(x))
#define MQTTD_REQUIRES(...) MQTTD_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
#define MQTTD_REQUIRES_SHARED(...) MQTTD_THREAD_ANNOTATION(requires_shared_capability(__VA_ARGS__))
#define MQTTD_ACQUIRE(...) MQTTD_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define MQTTD_ACQUIRE_SHARED(...) MQTTD_THREAD_ANNOTATION(acquire_shared_capability(__VA_ARGS__))
#define MQTTD_RELEASE(...) MQTTD_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
#define MQTTD_RELEASE_SHARED(...) MQTTD_THREAD_ANNOTATION(release_shared_capability(__VA_ARGS__))
#define MQTTD_RELEASE_GENERIC(...) MQTTD_THREAD_ANNOTATION(release_generic_capability(__VA_ARGS__))
#define MQTTD_TRY_ACQUIRE(...) MQTTD_THREAD_ANNOTATION(try_acquire_capability(__VA_ARGS__))
#define MQTTD_EXCLUDES(...) MQTTD_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))

namespace mqttd {

class MQTTD_CAPABILITY("mutex") Mutex {
public:
    Mutex() = default;
    Mutex(const Mutex&) = delete;
    Mutex& operator=(const Mutex&) = delete;

    void lock() MQTTD_ACQUIRE() { m_.lock(); }
    void unlock() MQTTD_RELEASE() { m_.unlock(); }
    bool try_lock() MQTTD_TRY_ACQUIRE(true) { return m_.try_lock(); }
    // For std::condition_variable_any and the like.
    std::mutex& native() { return m_; }

private:
    std::mutex m_;
};

class MQTTD_SCOPED_CAPABILITY MutexLock {
public:
    explicit MutexLock(Mutex& m) MQTTD_ACQUIRE(m) : m_(m) { m_.lock(); }
    ~MutexLock() MQTTD_RELEASE() { m_.unlock(); }
    MutexLock(const MutexLock&) = delete;
    MutexLock& operator=(const MutexLock&) = delete;

private:
    Mutex& m_;
};

}  // namespace mqttd

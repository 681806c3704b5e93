/**
 * Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
 */
#pragma once

#include <mutex>
#include <shared_mutex>

namespace faiss_ehi {

/** A readers-writer mutex under which a waiting writer holds off new
 * readers. std::shared_mutex (a pthread rwlock on Linux) lets readers in
 * while a writer waits, so a few threads searching back to back keep an
 * add waiting forever. Here a writer first takes `gate`, which every
 * reader passes through before its shared lock: readers that arrive
 * meanwhile wait, the ones inside finish, and the writer gets in.
 *
 * Meets the SharedMutex requirements (std::unique_lock, std::shared_lock,
 * std::lock). Not recursive: a thread holding it shared must not take it
 * again, since a writer waiting at the gate would then wait for it while
 * it waits at the gate. */
class WriterFirstMutex {
  public:
    void lock() {
        gate.lock();
        rw.lock();
    }
    bool try_lock() {
        if (!gate.try_lock()) {
            return false;
        }
        if (!rw.try_lock()) {
            gate.unlock();
            return false;
        }
        return true;
    }
    void unlock() {
        rw.unlock();
        gate.unlock();
    }
    void lock_shared() {
        gate.lock();
        gate.unlock();
        rw.lock_shared();
    }
    bool try_lock_shared() {
        if (!gate.try_lock()) {
            return false;
        }
        gate.unlock();
        return rw.try_lock_shared();
    }
    void unlock_shared() {
        rw.unlock_shared();
    }

  private:
    std::mutex gate;
    std::shared_mutex rw;
};

} // namespace faiss_ehi

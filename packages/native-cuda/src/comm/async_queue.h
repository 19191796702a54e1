// The communication thread: collectives submitted with async_op run here, in submission
// order, while the JS thread goes on (e.g. with the rest of backward). One thread for every
// communicator of the process, so MPI (initialised MPI_THREAD_SERIALIZED) is never entered
// by two threads at once and every rank issues the same collectives in the same order.
// Blocking collectives first drain the queue (they follow every earlier async one), then run
// on the caller's thread. An error of an async collective is kept and rethrown by wait().
#pragma once
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <unordered_map>

namespace vlmoe {

class AsyncQueue {
 public:
  AsyncQueue() = default;
  AsyncQueue(const AsyncQueue&) = delete;
  AsyncQueue& operator=(const AsyncQueue&) = delete;
  ~AsyncQueue();

  /** Queues `fn`; returns its ticket (increasing from 1). */
  int64_t submit(std::function<void()> fn);
  /** Blocks until `ticket` ran; rethrows its error (once). */
  void wait(int64_t ticket);
  /** True once `ticket` ran (successfully or not). */
  bool done(int64_t ticket);
  /** Blocks until everything submitted so far ran (errors stay with their tickets). */
  void drain();

 private:
  void run();
  std::mutex mu_;
  std::condition_variable cv_work_, cv_done_;
  std::deque<std::pair<int64_t, std::function<void()>>> q_;
  std::unordered_map<int64_t, std::exception_ptr> errors_;
  int64_t next_ = 1, finished_ = 0;  // tickets run in order: ticket t is done iff t <= finished_
  bool stop_ = false;
  std::thread th_;
};

/** The process's communication queue (started on first use). */
AsyncQueue& comm_queue();

}  // namespace vlmoe

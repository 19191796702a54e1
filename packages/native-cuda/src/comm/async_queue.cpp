#include "async_queue.h"

#include <stdexcept>
#include <string>

namespace vlmoe {

AsyncQueue::~AsyncQueue() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
  }
  cv_work_.notify_all();
  if (th_.joinable()) th_.join();
}

int64_t AsyncQueue::submit(std::function<void()> fn) {
  std::lock_guard<std::mutex> lk(mu_);
  if (!th_.joinable()) th_ = std::thread([this] { run(); });
  const int64_t t = next_++;
  q_.emplace_back(t, std::move(fn));
  cv_work_.notify_one();
  return t;
}

void AsyncQueue::run() {
  std::unique_lock<std::mutex> lk(mu_);
  for (;;) {
    cv_work_.wait(lk, [this] { return stop_ || !q_.empty(); });
    if (q_.empty()) return;  // stopping with nothing left
    auto [t, fn] = std::move(q_.front());
    q_.pop_front();
    lk.unlock();
    std::exception_ptr err;
    try {
      fn();
    } catch (...) {
      err = std::current_exception();
    }
    lk.lock();
    if (err) errors_[t] = err;
    finished_ = t;
    cv_done_.notify_all();
  }
}

void AsyncQueue::wait(int64_t ticket) {
  std::unique_lock<std::mutex> lk(mu_);
  if (ticket < 1 || ticket >= next_) throw std::invalid_argument("comm wait: unknown work " + std::to_string(ticket));
  cv_done_.wait(lk, [&] { return finished_ >= ticket; });
  auto it = errors_.find(ticket);
  if (it != errors_.end()) {
    std::exception_ptr e = it->second;
    errors_.erase(it);
    std::rethrow_exception(e);
  }
}

bool AsyncQueue::done(int64_t ticket) {
  std::lock_guard<std::mutex> lk(mu_);
  return finished_ >= ticket;
}

void AsyncQueue::drain() {
  std::unique_lock<std::mutex> lk(mu_);
  const int64_t last = next_ - 1;
  cv_done_.wait(lk, [&] { return finished_ >= last; });
}

AsyncQueue& comm_queue() {
  // never destroyed: the thread must not be joined from a static destructor after the
  // communicators (and MPI) are gone; at exit an idle thread is simply dropped
  static AsyncQueue* q = new AsyncQueue();
  return *q;
}

}  // namespace vlmoe

#include "threadpool.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace vlmoe {
namespace {

// Waits briefly before sleeping. A job on the pool costs two wake-ups when both sides sleep
// (the caller wakes a worker, the last worker wakes the caller): a futex round trip each,
// ~20-40 µs in a VM — more than an elementwise op of 1 MiB takes on one core (measured: an
// add of 4 MiB ran slower on two threads than on one). So a worker spins on the job counter
// for VLMOE_SPIN_US microseconds (default 50) after its last job before it blocks, and the
// caller spins as long for the workers to finish, before sleeping on a condition variable.
// Back-to-back ops (a training step) then hand over without a syscall, and an idle pool
// still sleeps after 50 µs (0 turns spinning off: always sleep).
int64_t spin_ns() {
  static const int64_t v = [] {
    const char* env = std::getenv("VLMOE_SPIN_US");
    const long us = env ? std::atol(env) : 50;
    return static_cast<int64_t>(us < 0 ? 0 : us) * 1000;
  }();
  return v;
}

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

// Spins until done() or the budget runs out; true when done() became true.
template <class Done>
bool spin_until(const Done& done) {
  const int64_t budget = spin_ns();
  if (budget == 0) return done();
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0;; ++i) {
    if (done()) return true;
    cpu_relax();
    if ((i & 63) == 63 && std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0).count() > budget)
      return done();
  }
}

class Pool {
 public:
  explicit Pool(int n) { resize(n); }
  ~Pool() { stop(); }

  int size() const { return static_cast<int>(workers_.size()) + 1; }

  void resize(int n) {
    stop();
    n = std::max(1, n);
    quit_.store(false);
    for (int i = 0; i < n - 1; ++i) workers_.emplace_back([this, i] { loop(i + 1); });
  }

  // Runs task(i) for i in [0, ntasks), task 0 on the caller.
  void run(int ntasks, const std::function<void(int)>& task) {
    bool wake;
    {
      std::unique_lock<std::mutex> lk(mu_);
      task_ = &task;
      ntasks_ = ntasks;
      next_.store(1, std::memory_order_relaxed);
      pending_.store(ntasks - 1, std::memory_order_relaxed);
      generation_.fetch_add(1, std::memory_order_release);
      wake = sleepers_ > 0;  // spinning workers see the new generation themselves
    }
    if (wake) cv_.notify_all();
    in_parallel_ = true;
    task(0);
    // The caller also helps with tasks not yet taken.
    for (int i = next_.fetch_add(1); i < ntasks; i = next_.fetch_add(1)) {
      task(i);
      finish_one();
    }
    in_parallel_ = false;
    const auto finished = [this] { return pending_.load(std::memory_order_acquire) == 0 && active_.load(std::memory_order_acquire) == 0; };
    spin_until(finished);
    std::unique_lock<std::mutex> lk(mu_);
    caller_waiting_ = true;
    done_cv_.wait(lk, finished);
    caller_waiting_ = false;
    task_ = nullptr;
  }

  static thread_local bool in_parallel_;

 private:
  void finish_one() {
    if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      std::lock_guard<std::mutex> lk(mu_);
      if (caller_waiting_) done_cv_.notify_one();
    }
  }

  void loop(int) {
    uint64_t seen = 0;
    for (;;) {
      spin_until([&] { return quit_.load(std::memory_order_relaxed) || generation_.load(std::memory_order_acquire) != seen; });
      const std::function<void(int)>* task;
      int ntasks;
      {
        std::unique_lock<std::mutex> lk(mu_);
        if (!quit_.load() && generation_.load() == seen) {
          ++sleepers_;
          cv_.wait(lk, [&] { return quit_.load() || generation_.load() != seen; });
          --sleepers_;
        }
        if (quit_.load()) return;
        seen = generation_.load();
        task = task_;
        ntasks = ntasks_;
        if (task == nullptr) continue;
        active_.fetch_add(1, std::memory_order_relaxed);
      }
      in_parallel_ = true;
      for (int i = next_.fetch_add(1); i < ntasks; i = next_.fetch_add(1)) {
        (*task)(i);
        finish_one();
      }
      in_parallel_ = false;
      std::lock_guard<std::mutex> lk(mu_);
      if (active_.fetch_sub(1, std::memory_order_acq_rel) == 1 && pending_.load() == 0 && caller_waiting_) done_cv_.notify_one();
    }
  }

  void stop() {
    {
      std::lock_guard<std::mutex> lk(mu_);
      quit_.store(true);
    }
    cv_.notify_all();
    for (auto& t : workers_) t.join();
    workers_.clear();
  }

  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable cv_, done_cv_;
  const std::function<void(int)>* task_ = nullptr;  // under mu_
  int ntasks_ = 0;                                  // under mu_
  int sleepers_ = 0;                                // workers blocked on cv_ (under mu_)
  bool caller_waiting_ = false;                     // the caller blocked on done_cv_ (under mu_)
  std::atomic<int> pending_{0};                     // tasks 1.. not yet finished
  std::atomic<int> active_{0};                      // workers inside the current generation's task loop (changed under mu_)
  std::atomic<int> next_{0};
  std::atomic<uint64_t> generation_{0};             // bumped under mu_
  std::atomic<bool> quit_{false};
};

thread_local bool Pool::in_parallel_ = false;

int default_threads() {
  if (const char* env = std::getenv("VLMOE_NUM_THREADS")) {
    int n = std::atoi(env);
    if (n > 0) return n;
  }
  unsigned hc = std::thread::hardware_concurrency();
  return hc == 0 ? 1 : static_cast<int>(hc);
}

Pool& pool() {
  static Pool* p = new Pool(default_threads());  // never destroyed: workers outlive statics safely
  return *p;
}

}  // namespace

int num_threads() { return pool().size(); }

void set_num_threads(int n) { pool().resize(n); }

void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn, int64_t align) {
  if (n <= 0) return;
  grain = std::max<int64_t>(grain, 1);
  Pool& p = pool();
  int64_t max_chunks = (n + grain - 1) / grain;
  int nt = static_cast<int>(std::min<int64_t>(p.size(), max_chunks));
  if (nt <= 1 || Pool::in_parallel_) {
    fn(0, n);
    return;
  }
  align = std::max<int64_t>(align, 1);
  const int64_t chunk = ((n + nt - 1) / nt + align - 1) / align * align;
  // An exception in any chunk is carried back to the caller (never lost on a worker).
  std::exception_ptr error;
  std::mutex error_mu;
  std::function<void(int)> task = [&](int i) {
    int64_t b = i * chunk, e = std::min(n, b + chunk);
    if (b >= e) return;
    try {
      fn(b, e);
    } catch (...) {
      std::lock_guard<std::mutex> lk(error_mu);
      if (!error) error = std::current_exception();
    }
  };
  p.run(nt, task);
  if (error) std::rethrow_exception(error);
}

}  // namespace vlmoe

#include "threadpool.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace vlmoe {
namespace {

class Pool {
 public:
  explicit Pool(int n) { resize(n); }
  ~Pool() { stop(); }

  int size() const { return static_cast<int>(workers_.size()) + 1; }

  void resize(int n) {
    stop();
    n = std::max(1, n);
    quit_ = false;
    for (int i = 0; i < n - 1; ++i) workers_.emplace_back([this, i] { loop(i + 1); });
  }

  // Runs task(i) for i in [0, ntasks), task 0 on the caller.
  void run(int ntasks, const std::function<void(int)>& task) {
    {
      std::unique_lock<std::mutex> lk(mu_);
      task_ = &task;
      ntasks_ = ntasks;
      next_.store(1, std::memory_order_relaxed);
      pending_ = ntasks - 1;
      ++generation_;
    }
    cv_.notify_all();
    in_parallel_ = true;
    task(0);
    // The caller also helps with tasks not yet taken.
    for (int i = next_.fetch_add(1); i < ntasks; i = next_.fetch_add(1)) {
      task(i);
      finish_one();
    }
    in_parallel_ = false;
    std::unique_lock<std::mutex> lk(mu_);
    done_cv_.wait(lk, [this] { return pending_ == 0 && active_ == 0; });
    task_ = nullptr;
  }

  static thread_local bool in_parallel_;

 private:
  void finish_one() {
    std::lock_guard<std::mutex> lk(mu_);
    if (--pending_ == 0) done_cv_.notify_one();
  }

  void loop(int) {
    uint64_t seen = 0;
    for (;;) {
      const std::function<void(int)>* task;
      int ntasks;
      {
        std::unique_lock<std::mutex> lk(mu_);
        cv_.wait(lk, [&] { return quit_ || generation_ != seen; });
        if (quit_) return;
        seen = generation_;
        task = task_;
        ntasks = ntasks_;
        if (task == nullptr) continue;
        ++active_;
      }
      in_parallel_ = true;
      for (int i = next_.fetch_add(1); i < ntasks; i = next_.fetch_add(1)) {
        (*task)(i);
        finish_one();
      }
      in_parallel_ = false;
      std::lock_guard<std::mutex> lk(mu_);
      if (--active_ == 0 && pending_ == 0) done_cv_.notify_one();
    }
  }

  void stop() {
    {
      std::lock_guard<std::mutex> lk(mu_);
      quit_ = true;
    }
    cv_.notify_all();
    for (auto& t : workers_) t.join();
    workers_.clear();
  }

  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable cv_, done_cv_;
  const std::function<void(int)>* task_ = nullptr;
  int ntasks_ = 0;
  int pending_ = 0;
  int active_ = 0;  // workers inside the current generation's task loop
  std::atomic<int> next_{0};
  uint64_t generation_ = 0;
  bool quit_ = false;
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

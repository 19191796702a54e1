// The fused optimisers' hyper-parameters and per-tensor segments, shared by the CPU kernels
// (cpu/optim.cpp) and the CUDA kernels (cuda/optim.cu); no N-API here.
#pragma once
#include <cstdint>

namespace vlmoe {

struct AdamHyper {
  double lr, beta1, beta2, eps, weight_decay;
  bool decoupled;  // AdamW (p *= 1 - lr*wd) instead of Adam's L2 (g += wd*p)
  bool amsgrad;
  bool maximize;
};

struct AdamSegment {
  void* p;
  const void* g;
  void* m;     // exp_avg
  void* v;     // exp_avg_sq
  void* vmax;  // max_exp_avg_sq (amsgrad only, else null)
  int64_t n;
  double step;  // the step count after this update (1 on the first step)
};

struct SgdHyper {
  double lr, momentum, dampening, weight_decay;
  bool nesterov;
  bool maximize;
};

struct SgdSegment {
  void* p;
  const void* g;
  void* buf;  // momentum buffer (null when momentum == 0)
  int64_t n;
  bool init;  // first step of this buffer: buf = d_p (PyTorch's clone rule)
};

struct PlainSegment {
  void* x;
  int64_t n;
};

}  // namespace vlmoe

// The fused multi-tensor optimisers on CUDA (cpu/optim.h's semantics, PyTorch 1.13's
// single-tensor formulas operation by operation): one launch updates every parameter of a
// group. The segment table (pointers, sizes, per-step constants) goes to the device once per
// step; each thread finds its segment by binary search over the prefix sums. Norms reduce
// fixed blocks of the concatenation (float64) and sum the partials in order on the host, so
// the result is deterministic and matches the CPU's to rounding.
#include <cuda_runtime.h>

#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "../optim_types.h"
#include "common.cuh"
#include "cuda_backend.h"

namespace vlmoe {

namespace {

struct DevAdamSeg {
  void* p;
  const void* g;
  void* m;
  void* v;
  void* vmax;
  double bc2_sqrt, step_size_neg;
};

struct DevSgdSeg {
  void* p;
  const void* g;
  void* buf;
  int init;
};

struct DevPlainSeg {
  void* x;
};

// `host` copied to a fresh device block (returned to the allocator with the block).
template <class S>
DeviceBlock upload(int device, const std::vector<S>& host) {
  DeviceBlock d(device, sizeof(S) * host.size());
  cuda_copy_h2d(device, d.p, host.data(), sizeof(S) * host.size());
  return d;
}

template <class T>
__global__ void k_adam(const DevAdamSeg* segs, const int64_t* start, int64_t count, int64_t total, T sign, T wd, T decay, T b1, T a1, T b2, T a2, T eps, bool l2,
                       bool decoupled, bool ams) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(blockDim.x) * gridDim.x) {
    const int64_t k = cu::segment_of(start, count, i);
    const DevAdamSeg s = segs[k];
    const int64_t j = i - start[k];
    T* p = static_cast<T*>(s.p);
    T* m = static_cast<T*>(s.m);
    T* v = static_cast<T*>(s.v);
    T gi = static_cast<const T*>(s.g)[j] * sign;
    T pi = p[j];
    if (l2) gi = gi + wd * pi;
    if (decoupled) pi = pi * decay;
    T mi = m[j] * b1;
    mi = mi + a1 * gi;
    T vi = v[j] * b2;
    vi = vi + a2 * gi * gi;
    m[j] = mi;
    v[j] = vi;
    T src = vi;
    if (ams) {
      T* vm = static_cast<T*>(s.vmax);
      T mx = vm[j];
      mx = (mx > vi || mx != mx) ? mx : vi;
      vm[j] = mx;
      src = mx;
    }
    const T denom = sqrt(src) / T(s.bc2_sqrt) + eps;
    p[j] = pi + T(s.step_size_neg) * (mi / denom);
  }
}

template <class T>
__global__ void k_sgd(const DevSgdSeg* segs, const int64_t* start, int64_t count, int64_t total, T sign, T wd, T mom, T a, T neg_lr, bool has_wd, bool has_mom,
                      bool nesterov) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(blockDim.x) * gridDim.x) {
    const int64_t k = cu::segment_of(start, count, i);
    const DevSgdSeg s = segs[k];
    const int64_t j = i - start[k];
    T* p = static_cast<T*>(s.p);
    T d = static_cast<const T*>(s.g)[j] * sign;
    if (has_wd) d = d + wd * p[j];
    if (has_mom) {
      T* buf = static_cast<T*>(s.buf);
      T b;
      if (s.init) {
        b = d;
      } else {
        b = buf[j] * mom;
        b = b + a * d;
      }
      buf[j] = b;
      d = nesterov ? d + mom * b : b;
    }
    p[j] = p[j] + neg_lr * d;
  }
}

constexpr int64_t kNormBlock = 1 << 15;  // the CPU's block: same partial sums

template <class T>
__global__ void k_norm(const DevPlainSeg* segs, const int64_t* start, int64_t count, int64_t total, int kind, double pw, double* partial) {
  __shared__ double sh[cu::kBlock];
  const int64_t b0 = blockIdx.x * kNormBlock, b1 = b0 + kNormBlock < total ? b0 + kNormBlock : total;
  double acc = 0;
  for (int64_t i = b0 + threadIdx.x; i < b1; i += blockDim.x) {
    const int64_t k = cu::segment_of(start, count, i);
    const double y = double(static_cast<const T*>(segs[k].x)[i - start[k]]);
    if (kind == 0) acc += y * y;
    else if (kind == 1) {
      const double a = fabs(y);
      acc = (a > acc || a != a) ? a : acc;
    } else {
      acc += pow(fabs(y), pw);
    }
  }
  sh[threadIdx.x] = acc;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s >>= 1) {
    if (int(threadIdx.x) < s) {
      const double o = sh[threadIdx.x + s];
      if (kind == 1) sh[threadIdx.x] = (o > sh[threadIdx.x] || o != o) ? o : sh[threadIdx.x];
      else sh[threadIdx.x] += o;
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) partial[blockIdx.x] = sh[0];
}

template <class T>
__global__ void k_scale(const DevPlainSeg* segs, const int64_t* start, int64_t count, int64_t total, T s) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(blockDim.x) * gridDim.x) {
    const int64_t k = cu::segment_of(start, count, i);
    T* x = static_cast<T*>(segs[k].x);
    x[i - start[k]] = x[i - start[k]] * s;
  }
}

template <class Seg>
std::vector<int64_t> prefix(const Seg* segs, int64_t count) {
  std::vector<int64_t> start(static_cast<size_t>(count) + 1, 0);
  for (int64_t k = 0; k < count; ++k) start[k + 1] = start[k] + segs[k].n;
  return start;
}

void bad(const char* op, DType t) { throw std::invalid_argument(std::string(op) + " (cuda): dtype " + dtype_name(t) + " is not supported (use float32 or float64)"); }

}  // namespace

void cuda_adam_step(int device, DType t, const AdamHyper& h, const AdamSegment* segs, int64_t count) {
  if (t != DType::f32 && t != DType::f64) bad("adamStep", t);
  const std::vector<int64_t> start = prefix(segs, count);
  const int64_t total = start[count];
  if (total == 0) return;
  std::vector<DevAdamSeg> ds(static_cast<size_t>(count));
  for (int64_t k = 0; k < count; ++k) {
    const double bc1 = 1.0 - std::pow(h.beta1, segs[k].step), bc2 = 1.0 - std::pow(h.beta2, segs[k].step);
    ds[k] = DevAdamSeg{segs[k].p, segs[k].g, segs[k].m, segs[k].v, segs[k].vmax, std::sqrt(bc2), -(h.lr / bc1)};
  }
  DeviceBlock bsegs = upload(device, ds), bstart = upload(device, start);
  auto* dsegs = static_cast<DevAdamSeg*>(bsegs.p);
  auto* dstart = static_cast<int64_t*>(bstart.p);
  const bool l2 = !h.decoupled && h.weight_decay != 0;
  cu::set_device(device);
  const unsigned grid = cu::blocks_for(total, cu::kBlock);
  if (t == DType::f32)
    k_adam<float><<<grid, cu::kBlock>>>(dsegs, dstart, count, total, h.maximize ? -1.f : 1.f, float(h.weight_decay), float(1.0 - h.lr * h.weight_decay), float(h.beta1),
                                        float(1.0 - h.beta1), float(h.beta2), float(1.0 - h.beta2), float(h.eps), l2, h.decoupled, h.amsgrad);
  else
    k_adam<double><<<grid, cu::kBlock>>>(dsegs, dstart, count, total, h.maximize ? -1.0 : 1.0, h.weight_decay, 1.0 - h.lr * h.weight_decay, h.beta1, 1.0 - h.beta1,
                                         h.beta2, 1.0 - h.beta2, h.eps, l2, h.decoupled, h.amsgrad);
  cu::launched("adamStep");
}

void cuda_sgd_step(int device, DType t, const SgdHyper& h, const SgdSegment* segs, int64_t count) {
  if (t != DType::f32 && t != DType::f64) bad("sgdStep", t);
  const std::vector<int64_t> start = prefix(segs, count);
  const int64_t total = start[count];
  if (total == 0) return;
  std::vector<DevSgdSeg> ds(static_cast<size_t>(count));
  for (int64_t k = 0; k < count; ++k) ds[k] = DevSgdSeg{segs[k].p, segs[k].g, segs[k].buf, segs[k].init ? 1 : 0};
  DeviceBlock bsegs = upload(device, ds), bstart = upload(device, start);
  auto* dsegs = static_cast<DevSgdSeg*>(bsegs.p);
  auto* dstart = static_cast<int64_t*>(bstart.p);
  cu::set_device(device);
  const unsigned grid = cu::blocks_for(total, cu::kBlock);
  const bool wd = h.weight_decay != 0, mom = h.momentum != 0;
  if (t == DType::f32)
    k_sgd<float><<<grid, cu::kBlock>>>(dsegs, dstart, count, total, h.maximize ? -1.f : 1.f, float(h.weight_decay), float(h.momentum), float(1.0 - h.dampening),
                                       float(-h.lr), wd, mom, h.nesterov);
  else
    k_sgd<double><<<grid, cu::kBlock>>>(dsegs, dstart, count, total, h.maximize ? -1.0 : 1.0, h.weight_decay, h.momentum, 1.0 - h.dampening, -h.lr, wd, mom,
                                        h.nesterov);
  cu::launched("sgdStep");
}

double cuda_multi_tensor_norm(int device, DType t, int kind, double p, const PlainSegment* segs, int64_t count) {
  if (t != DType::f32 && t != DType::f64) bad("multiTensorNorm", t);
  const std::vector<int64_t> start = prefix(segs, count);
  const int64_t total = start[count];
  if (total == 0) return 0;
  std::vector<DevPlainSeg> ds(static_cast<size_t>(count));
  for (int64_t k = 0; k < count; ++k) ds[k] = DevPlainSeg{segs[k].x};
  DeviceBlock bsegs = upload(device, ds), bstart = upload(device, start);
  auto* dsegs = static_cast<DevPlainSeg*>(bsegs.p);
  auto* dstart = static_cast<int64_t*>(bstart.p);
  const int64_t nblocks = (total + kNormBlock - 1) / kNormBlock;
  DeviceBlock bpart(device, sizeof(double) * size_t(nblocks));
  auto* dpart = static_cast<double*>(bpart.p);
  cu::set_device(device);
  if (t == DType::f32) k_norm<float><<<static_cast<unsigned>(nblocks), cu::kBlock>>>(dsegs, dstart, count, total, kind, p, dpart);
  else k_norm<double><<<static_cast<unsigned>(nblocks), cu::kBlock>>>(dsegs, dstart, count, total, kind, p, dpart);
  cu::launched("multiTensorNorm");
  std::vector<double> part(static_cast<size_t>(nblocks));
  cuda_copy_d2h(device, part.data(), dpart, sizeof(double) * part.size());
  double r = 0;
  for (double v : part) r = kind == 1 ? ((v > r || v != v) ? v : r) : r + v;
  return r;
}

void cuda_multi_tensor_scale(int device, DType t, double scale, const PlainSegment* segs, int64_t count) {
  if (t != DType::f32 && t != DType::f64) bad("multiTensorScale", t);
  const std::vector<int64_t> start = prefix(segs, count);
  const int64_t total = start[count];
  if (total == 0) return;
  std::vector<DevPlainSeg> ds(static_cast<size_t>(count));
  for (int64_t k = 0; k < count; ++k) ds[k] = DevPlainSeg{segs[k].x};
  DeviceBlock bsegs = upload(device, ds), bstart = upload(device, start);
  auto* dsegs = static_cast<DevPlainSeg*>(bsegs.p);
  auto* dstart = static_cast<int64_t*>(bstart.p);
  cu::set_device(device);
  const unsigned grid = cu::blocks_for(total, cu::kBlock);
  if (t == DType::f32) k_scale<float><<<grid, cu::kBlock>>>(dsegs, dstart, count, total, float(scale));
  else k_scale<double><<<grid, cu::kBlock>>>(dsegs, dstart, count, total, scale);
  cu::launched("multiTensorScale");
}

}  // namespace vlmoe

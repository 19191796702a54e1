// The argument block shared with JavaScript.
//
// Passing shapes and strides as JS arrays costs far more than the kernels of small ops, so
// JS writes every numeric argument into one Float64Array that views `g_args` (exact for
// integers below 2^53) and then calls the op with a few small integers. Reader walks it.
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>

#include "dtype.h"
#include "iter.h"
#include "storage.h"

namespace vlmoe {

constexpr int kArgsLen = 4096;
extern double g_args[kArgsLen];

struct Operand {
  char* ptr;   // element 0 of the view (storage base + offset)
  int device;
};

class Reader {
 public:
  explicit Reader(const char* op) : op_(op) {}
  double f() { return check(), g_args[i_++]; }
  int64_t n() { return static_cast<int64_t>(f()); }
  // handle, element offset; validated against the storage's size for `extent` elements.
  Operand ptr(DType t, int64_t min_reach, int64_t max_reach) {
    int32_t h = static_cast<int32_t>(n());
    int64_t off = n();
    const Buffer& b = storage_get(h);
    const int64_t es = static_cast<int64_t>(dtype_size(t));
    if (off + min_reach < 0 || (off + max_reach + 1) * es > static_cast<int64_t>(b.nbytes))
      throw std::out_of_range(std::string(op_) + ": view reaches outside its storage (handle " + std::to_string(h) + ")");
    same_device(b.device);
    return Operand{static_cast<char*>(b.ptr) + off * es, b.device};
  }
  // A contiguous block of `count` elements.
  Operand block(DType t, int64_t count) { return ptr(t, 0, count > 0 ? count - 1 : -1); }
  // An Iter of `nops` operands: ndim, shape, then per operand handle, offset, strides.
  Iter iter(int nops, const DType* types, int* device) {
    Iter it;
    it.nops = nops;
    it.ndim = static_cast<int>(n());
    if (it.ndim > kMaxDims) throw std::invalid_argument(std::string(op_) + ": more than 12 dims");
    bool empty = false;
    for (int d = 0; d < it.ndim; ++d) {
      it.shape[d] = n();
      if (it.shape[d] == 0) empty = true;
    }
    int dev = 0;
    for (int k = 0; k < nops; ++k) {
      int32_t h = static_cast<int32_t>(n());
      int64_t off = n();
      int64_t lo = 0, hi = 0;
      for (int d = 0; d < it.ndim; ++d) {
        int64_t s = n();
        it.stride[k][d] = s;
        if (!empty) (s < 0 ? lo : hi) += s * (it.shape[d] - 1);
      }
      const Buffer& b = storage_get(h);
      const int64_t es = static_cast<int64_t>(dtype_size(types[k]));
      if (!empty && (off + lo < 0 || (off + hi + 1) * es > static_cast<int64_t>(b.nbytes)))
        throw std::out_of_range(std::string(op_) + ": operand " + std::to_string(k) + " reaches outside its storage");
      it.base[k] = static_cast<char*>(b.ptr) + off * es;
      it.elsize[k] = static_cast<int>(es);
      if (k == 0) dev = b.device;
      else if (b.device != dev)
        throw std::invalid_argument(std::string(op_) + ": operands are on different devices");
      same_device(b.device);
    }
    if (device) *device = dev;
    return it;
  }

 private:
  // Every operand of one call must live on one device (a host kernel must never be handed
  // a device pointer).
  void same_device(int d) {
    if (device_ == kNoDevice) device_ = d;
    else if (device_ != d) throw std::invalid_argument(std::string(op_) + ": operands are on different devices");
  }
  static constexpr int kNoDevice = -1000;
  int device_ = kNoDevice;
  void check() const {
    if (i_ >= kArgsLen) throw std::out_of_range(std::string(op_) + ": argument block overflow");
  }
  const char* op_;
  int i_ = 0;
};

}  // namespace vlmoe

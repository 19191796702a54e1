// N-API bindings, Reductions, cumulative sums, top-k.
// Each reads and checks its operands from the argument block, then calls the backend of their
// device (backend.h).
#include <napi.h>

#include <stdexcept>
#include <string>

#include "common.h"

namespace vlmoe {
namespace {

// reduce(op, dtype, withIndex): block: iter (out, in[, index])
Napi::Value Reduce(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VLMOE_TRY
  int op = I(info, 0);
  DType t = dtype_from_int(I(info, 1));
  bool with_index = I(info, 2) != 0;
  Reader r("reduce");
  DType ts[3] = {t, t, DType::i64};
  int device;
  Iter it = r.iter(with_index ? 3 : 2, ts, &device);
  backend_for(device).reduce(op, t, it, with_index);
  return env.Undefined();
  VLMOE_CATCH(env)
}

// cumsum(dtype): block: iter (out, in) without the scanned dim, len, inStride, outStride
Napi::Value Cumsum(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VLMOE_TRY
  DType t = dtype_from_int(I(info, 0));
  Reader r("cumsum");
  DType ts[2] = {t, t};
  int device;
  Iter it = r.iter(2, ts, &device);
  int64_t len = r.n(), sin = r.n(), sout = r.n();
  backend_for(device).cumsum(t, it, len, sin, sout);
  return env.Undefined();
  VLMOE_CATCH(env)
}

// topk(dtype, largest): block: rows, cols, k, x, values, indices(int64)
Napi::Value TopK(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VLMOE_TRY
  DType t = dtype_from_int(I(info, 0));
  bool largest = I(info, 1) != 0;
  Reader r("topk");
  RowArgs ra{r.n(), r.n()};
  int64_t k = r.n();
  if (k < 0 || k > ra.cols) throw std::out_of_range("topk: k = " + std::to_string(k) + " is out of range for a dimension of size " + std::to_string(ra.cols));
  Operand x = r.block(t, ra.rows * ra.cols), v = r.block(t, ra.rows * k), ix = r.block(DType::i64, ra.rows * k);
  if (v.device != x.device || ix.device != x.device) throw std::invalid_argument("topk: operands are on different devices");
  backend_for(x.device).topk(t, ra, k, largest, x.ptr, v.ptr, reinterpret_cast<int64_t*>(ix.ptr));
  return env.Undefined();
  VLMOE_CATCH(env)
}

}  // namespace

void register_reduce(Napi::Env env, Napi::Object exports) {
  exports.Set("reduce", Napi::Function::New(env, Reduce, "reduce"));
  exports.Set("cumsum", Napi::Function::New(env, Cumsum, "cumsum"));
  exports.Set("topk", Napi::Function::New(env, TopK, "topk"));
}

}  // namespace vlmoe

// N-API bindings, Random numbers (Philox streams) and dropout.
// Each reads and checks its operands from the argument block, then calls the backend of their
// device (backend.h).
#include <napi.h>

#include <stdexcept>
#include <string>

#include "common.h"

namespace vlmoe {
namespace {

// random(kind, dtype): kind 0 uniform(lo, hi), 1 normal(mean, std), 2 int(low, high).
// block: handle, offset, n, seed, counter offset, a, b
Napi::Value Random(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VLMOE_TRY
  int kind = I(info, 0);
  DType t = dtype_from_int(I(info, 1));
  Reader r("random");
  int64_t n = static_cast<int64_t>(g_args[2]);
  Operand o = r.block(t, n);
  r.n();
  uint64_t seed = static_cast<uint64_t>(r.f()), off = static_cast<uint64_t>(r.f());
  double a = r.f(), b = r.f();
  Backend& be = backend_for(o.device);
  if (kind == 0) be.rand_uniform(t, o.ptr, n, seed, off, a, b);
  else if (kind == 1) be.rand_normal(t, o.ptr, n, seed, off, a, b);
  else be.rand_int(t, o.ptr, n, seed, off, static_cast<int64_t>(a), static_cast<int64_t>(b));
  return env.Undefined();
  VLMOE_CATCH(env)
}

// dropout(dtype): block: n, p, seed, offset, x, y, mask(uint8)
Napi::Value Dropout(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VLMOE_TRY
  DType t = dtype_from_int(I(info, 0));
  Reader r("dropout");
  int64_t n = r.n();
  double p = r.f();
  uint64_t seed = static_cast<uint64_t>(r.f()), off = static_cast<uint64_t>(r.f());
  Operand x = r.block(t, n), y = r.block(t, n), m = r.block(DType::u8, n);
  if (x.device != y.device || m.device != x.device) throw std::invalid_argument("dropout: operands are on different devices");
  backend_for(x.device).dropout(t, x.ptr, y.ptr, reinterpret_cast<uint8_t*>(m.ptr), n, p, seed, off);
  return env.Undefined();
  VLMOE_CATCH(env)
}

}  // namespace

void register_random(Napi::Env env, Napi::Object exports) {
  exports.Set("random", Napi::Function::New(env, Random, "random"));
  exports.Set("dropout", Napi::Function::New(env, Dropout, "dropout"));
}

}  // namespace vlmoe

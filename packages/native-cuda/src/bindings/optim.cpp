// N-API bindings of the fused multi-tensor optimisers (cpu/optim.h semantics; the kernel of
// the tensors' device, backend.h). Argument-block layouts:
// adamStep(dtype, decoupled, amsgrad): block: count, lr, beta1, beta2, eps, weightDecay,
//   maximize, then per tensor: step, numel, p, g, exp_avg, exp_avg_sq (handle, offset each)
//   and, with amsgrad, max_exp_avg_sq.
// sgdStep(dtype, hasMomentum): block: count, lr, momentum, dampening, weightDecay, nesterov,
//   maximize, then per tensor: numel, p, g (handle, offset) and, with momentum, init flag,
//   buf (handle, offset).
// multiTensorNorm(dtype, kind) -> number: block: count, p, then per tensor numel, handle, offset.
// multiTensorScale(dtype): block: count, scale, then per tensor numel, handle, offset.
#include <napi.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "common.h"

namespace vlmoe {
namespace {

// Every tensor of one call lives on one device: the first one's (kCpu until one is seen).
struct DeviceOf {
  const char* op;
  int device = kCpu;
  bool seen = false;
  void operator()(const Operand& o) {
    if (!seen) device = o.device, seen = true;
    else if (o.device != device) throw std::invalid_argument(std::string(op) + ": the tensors of one step are on different devices");
  }
};


Napi::Value OptimAdamStep(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VLMOE_TRY
  const DType t = dtype_from_int(I(info, 0));
  Reader r("adamStep");
  const int64_t count = r.n();
  if (count < 0) throw std::invalid_argument("adamStep: negative tensor count");
  AdamHyper h;
  h.lr = r.f();
  h.beta1 = r.f();
  h.beta2 = r.f();
  h.eps = r.f();
  h.weight_decay = r.f();
  h.maximize = r.f() != 0;
  h.decoupled = I(info, 1) != 0;
  h.amsgrad = I(info, 2) != 0;
  std::vector<AdamSegment> segs(static_cast<size_t>(count));
  DeviceOf dev{"adamStep"};
  for (auto& s : segs) {
    s.step = r.f();
    s.n = r.n();
    if (s.n < 0) throw std::invalid_argument("adamStep: negative numel");
    Operand p = r.block(t, s.n), g = r.block(t, s.n), m = r.block(t, s.n), v = r.block(t, s.n);
    dev(p);
    dev(g);
    dev(m);
    dev(v);
    s.p = p.ptr;
    s.g = g.ptr;
    s.m = m.ptr;
    s.v = v.ptr;
    s.vmax = nullptr;
    if (h.amsgrad) {
      Operand vm = r.block(t, s.n);
      dev(vm);
      s.vmax = vm.ptr;
    }
  }
  backend_for(dev.device).adam_step(t, h, segs.data(), count);
  return env.Undefined();
  VLMOE_CATCH(env)
}

Napi::Value OptimSgdStep(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VLMOE_TRY
  const DType t = dtype_from_int(I(info, 0));
  const bool has_mom = I(info, 1) != 0;
  Reader r("sgdStep");
  const int64_t count = r.n();
  if (count < 0) throw std::invalid_argument("sgdStep: negative tensor count");
  SgdHyper h;
  h.lr = r.f();
  h.momentum = r.f();
  h.dampening = r.f();
  h.weight_decay = r.f();
  h.nesterov = r.f() != 0;
  h.maximize = r.f() != 0;
  if (!has_mom) h.momentum = 0;
  else if (h.momentum == 0) throw std::invalid_argument("sgdStep: momentum buffers given with momentum 0");
  std::vector<SgdSegment> segs(static_cast<size_t>(count));
  DeviceOf dev{"sgdStep"};
  for (auto& s : segs) {
    s.n = r.n();
    if (s.n < 0) throw std::invalid_argument("sgdStep: negative numel");
    Operand p = r.block(t, s.n), g = r.block(t, s.n);
    dev(p);
    dev(g);
    s.p = p.ptr;
    s.g = g.ptr;
    s.buf = nullptr;
    s.init = false;
    if (has_mom) {
      s.init = r.f() != 0;
      Operand b = r.block(t, s.n);
      dev(b);
      s.buf = b.ptr;
    }
  }
  backend_for(dev.device).sgd_step(t, h, segs.data(), count);
  return env.Undefined();
  VLMOE_CATCH(env)
}

std::vector<PlainSegment> read_plain(Reader& r, DType t, int64_t count, const char* op, int& device) {
  if (count < 0) throw std::invalid_argument(std::string(op) + ": negative tensor count");
  std::vector<PlainSegment> segs(static_cast<size_t>(count));
  DeviceOf dev{op};
  for (auto& s : segs) {
    s.n = r.n();
    if (s.n < 0) throw std::invalid_argument(std::string(op) + ": negative numel");
    Operand x = r.block(t, s.n);
    dev(x);
    s.x = x.ptr;
  }
  device = dev.device;
  return segs;
}

Napi::Value OptimMultiTensorNorm(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VLMOE_TRY
  const DType t = dtype_from_int(I(info, 0));
  const int kind = I(info, 1);
  if (kind < 0 || kind > 2) throw std::invalid_argument("multiTensorNorm: kind must be 0, 1 or 2");
  Reader r("multiTensorNorm");
  const int64_t count = r.n();
  const double p = r.f();
  int device;
  std::vector<PlainSegment> segs = read_plain(r, t, count, "multiTensorNorm", device);
  return Napi::Number::New(env, backend_for(device).multi_tensor_norm(t, kind, p, segs.data(), count));
  VLMOE_CATCH(env)
}

Napi::Value OptimMultiTensorScale(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VLMOE_TRY
  const DType t = dtype_from_int(I(info, 0));
  Reader r("multiTensorScale");
  const int64_t count = r.n();
  const double scale = r.f();
  int device;
  std::vector<PlainSegment> segs = read_plain(r, t, count, "multiTensorScale", device);
  backend_for(device).multi_tensor_scale(t, scale, segs.data(), count);
  return env.Undefined();
  VLMOE_CATCH(env)
}

}  // namespace

void register_optim(Napi::Env env, Napi::Object exports) {
  exports.Set("adamStep", Napi::Function::New(env, OptimAdamStep, "adamStep"));
  exports.Set("sgdStep", Napi::Function::New(env, OptimSgdStep, "sgdStep"));
  exports.Set("multiTensorNorm", Napi::Function::New(env, OptimMultiTensorNorm, "multiTensorNorm"));
  exports.Set("multiTensorScale", Napi::Function::New(env, OptimMultiTensorScale, "multiTensorScale"));
}

}  // namespace vlmoe

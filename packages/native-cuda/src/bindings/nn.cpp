// N-API bindings, Fused neural-network kernels: softmax, flash attention, cross entropy, layer norm, forward and backward.
// Each reads and checks its operands from the argument block, then calls the backend of their
// device (backend.h).
#include <napi.h>

#include <cmath>
#include <stdexcept>
#include <string>

#include "common.h"
#include "../cpu/cross_entropy.h"

namespace vlmoe {
namespace {

// softmax(dtype, log, maskKind 0 none / 1 bool / 2 additive):
// block: rows, cols, scale, x, y, [mask handle, offset, ndim, rowShape..., strides..., colStride]
Napi::Value Softmax(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VLMOE_TRY
  DType t = dtype_from_int(I(info, 0));
  SoftmaxArgs a;
  a.log = I(info, 1) != 0;
  int mask_kind = I(info, 2);
  Reader r("softmax");
  a.r.rows = r.n();
  a.r.cols = r.n();
  a.scale = r.f();
  const int64_t n = a.r.rows * a.r.cols;
  Operand x = r.block(t, n), y = r.block(t, n);
  if (x.device != y.device) throw std::invalid_argument("softmax: x and y are on different devices");
  a.x = x.ptr;
  a.y = y.ptr;
  if (mask_kind) {
    a.mask_bool = mask_kind == 1;
    DType mt = a.mask_bool ? DType::b8 : t;
    int32_t h = static_cast<int32_t>(r.n());
    int64_t off = r.n();
    a.mask_ndim = static_cast<int>(r.n());
    if (a.mask_ndim > kMaxDims) throw std::invalid_argument("softmax: mask has too many dims");
    for (int d = 0; d < a.mask_ndim; ++d) a.row_shape[d] = r.n();
    int64_t hi = 0, lo = 0;
    for (int d = 0; d < a.mask_ndim; ++d) {
      a.mask_stride[d] = r.n();
      (a.mask_stride[d] < 0 ? lo : hi) += a.mask_stride[d] * (a.row_shape[d] - 1);
    }
    a.mask_col_stride = r.n();
    (a.mask_col_stride < 0 ? lo : hi) += a.mask_col_stride * (a.r.cols - 1);
    const Buffer& b = storage_get(h);
    int64_t es = int64_t(dtype_size(mt));
    if (b.device != x.device) throw std::invalid_argument("softmax: the mask is on another device than the scores");
    if (n > 0 && (off + lo < 0 || (off + hi + 1) * es > int64_t(b.nbytes)))
      throw std::out_of_range("softmax: mask view reaches outside its storage");
    a.mask = static_cast<char*>(b.ptr) + off * es;
  }
  backend_for(x.device).softmax(t, a);
  return env.Undefined();
  VLMOE_CATCH(env)
}

// softmaxBackward(dtype, log): block: rows, cols, y, g, dx
Napi::Value SoftmaxBackward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VLMOE_TRY
  DType t = dtype_from_int(I(info, 0));
  bool log = I(info, 1) != 0;
  Reader r("softmax_backward");
  RowArgs ra{r.n(), r.n()};
  const int64_t n = ra.rows * ra.cols;
  Operand y = r.block(t, n), g = r.block(t, n), dx = r.block(t, n);
  if (y.device != g.device || y.device != dx.device) throw std::invalid_argument("softmax_backward: operands are on different devices");
  backend_for(y.device).softmax_backward(t, ra, log, y.ptr, g.ptr, dx.ptr);
  return env.Undefined();
  VLMOE_CATCH(env)
}

// The attention entries' common block: B, H, Lq, Lk, D, Dv, scale, then q, k, v, out, lse
// (contiguous; lse float64 for float64 inputs, else float32). The mask (maskKind 1 bool
// keep / 2 additive in q's dtype) follows the call's other operands: handle, offset, then
// its strides over (b, h, query, key), 0 on broadcast dims.
static void attention_header(Reader& r, const char* op, DType t, AttentionArgs& a, Operand* ops) {
  a.B = r.n(), a.H = r.n(), a.Lq = r.n(), a.Lk = r.n(), a.D = r.n(), a.Dv = r.n();
  a.scale = r.f();
  if (a.B < 0 || a.H < 0 || a.Lq < 0 || a.Lk < 0 || a.D < 0 || a.Dv < 0) throw std::invalid_argument(std::string(op) + ": negative size");
  if (!std::isfinite(a.scale)) throw std::invalid_argument(std::string(op) + ": scale must be finite");
  const int64_t BH = a.B * a.H;
  const DType lt = t == DType::f64 ? DType::f64 : DType::f32;
  ops[0] = r.block(t, BH * a.Lq * a.D);
  ops[1] = r.block(t, BH * a.Lk * a.D);
  ops[2] = r.block(t, BH * a.Lk * a.Dv);
  ops[3] = r.block(t, BH * a.Lq * a.Dv);
  ops[4] = r.block(lt, BH * a.Lq);
  a.q = ops[0].ptr, a.k = ops[1].ptr, a.v = ops[2].ptr, a.out = ops[3].ptr, a.lse = ops[4].ptr;
}

static void attention_mask(Reader& r, const char* op, DType t, int mask_kind, int device, AttentionArgs& a) {
  if (mask_kind == 0) return;
  if (mask_kind != 1 && mask_kind != 2) throw std::invalid_argument(std::string(op) + ": unknown mask kind");
  a.mask_bool = mask_kind == 1;
  const DType mt = a.mask_bool ? DType::b8 : t;
  const int32_t h = static_cast<int32_t>(r.n());
  const int64_t off = r.n();
  const int64_t ext[4] = {a.B, a.H, a.Lq, a.Lk};
  int64_t lo = 0, hi = 0;
  bool empty = false;
  for (int d = 0; d < 4; ++d) {
    a.mask_stride[d] = r.n();
    if (ext[d] == 0) empty = true;
    else (a.mask_stride[d] < 0 ? lo : hi) += a.mask_stride[d] * (ext[d] - 1);
  }
  const Buffer& b = storage_get(h);
  const int64_t es = int64_t(dtype_size(mt));
  if (b.device != device) throw std::invalid_argument(std::string(op) + ": the mask is on another device than q");
  if (!empty && (off + lo < 0 || (off + hi + 1) * es > int64_t(b.nbytes))) throw std::out_of_range(std::string(op) + ": mask view reaches outside its storage");
  a.mask = static_cast<char*>(b.ptr) + off * es;
}

// attention(dtype, maskKind 0 none / 1 bool / 2 additive, causal):
// block: the attention header (above), [mask]
Napi::Value Attention(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VLMOE_TRY
  DType t = dtype_from_int(I(info, 0));
  const int mask_kind = I(info, 1);
  AttentionArgs a;
  a.causal = I(info, 2) != 0;
  Reader r("attention");
  Operand ops[5];
  attention_header(r, "attention", t, a, ops);
  attention_mask(r, "attention", t, mask_kind, ops[0].device, a);
  if (a.B * a.H * a.Lq == 0) return env.Undefined();
  backend_for(ops[0].device).attention_forward(t, a);
  return env.Undefined();
  VLMOE_CATCH(env)
}

// The float dtype of cross entropy's loss, lse and g rows: float64 logits keep float64,
// the others (float32, bfloat16, float16) use float32.
static DType cross_entropy_row_dtype(DType t) { return t == DType::f64 ? DType::f64 : DType::f32; }

static CrossEntropyArgs cross_entropy_header(Reader& r, DType target_dtype) {
  CrossEntropyArgs a;
  a.N = r.n();
  a.C = r.n();
  a.ignore_index = r.n();
  a.smoothing = r.f();
  a.target_dtype = target_dtype;
  if (a.N < 0 || a.C < 0) throw std::invalid_argument("cross_entropy: negative sizes");
  if (!(a.smoothing >= 0 && a.smoothing <= 1)) throw std::invalid_argument("cross_entropy: label smoothing must be in [0, 1], got " + std::to_string(a.smoothing));
  if (target_dtype != DType::i64 && target_dtype != DType::i32)
    throw std::invalid_argument(std::string("cross_entropy: targets must be int32 or int64, got ") + dtype_name(target_dtype));
  return a;
}

// crossEntropy(dtype, targetDtype): block: N, C, ignoreIndex, smoothing, logits [N, C],
// target [N], loss [N], lse [N] (loss and lse: float64 for float64 logits, else float32)
Napi::Value CrossEntropy(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VLMOE_TRY
  DType t = dtype_from_int(I(info, 0)), tt = dtype_from_int(I(info, 1));
  Reader r("cross_entropy");
  CrossEntropyArgs a = cross_entropy_header(r, tt);
  const DType rt = cross_entropy_row_dtype(t);
  Operand x = r.block(t, a.N * a.C), tg = r.block(tt, a.N), loss = r.block(rt, a.N), lse = r.block(rt, a.N);
  same_device("cross_entropy", x.device, {&tg, &loss, &lse});
  backend_for(x.device).cross_entropy_forward(t, a, x.ptr, tg.ptr, loss.ptr, lse.ptr);
  return env.Undefined();
  VLMOE_CATCH(env)
}

// attentionBackward(dtype, maskKind, causal):
// block: the attention header (above), dout, dq, dk, dv, [mask]
Napi::Value AttentionBackward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VLMOE_TRY
  DType t = dtype_from_int(I(info, 0));
  const int mask_kind = I(info, 1);
  AttentionArgs a;
  a.causal = I(info, 2) != 0;
  Reader r("attention_backward");
  Operand ops[5];
  attention_header(r, "attention_backward", t, a, ops);
  const int64_t BH = a.B * a.H;
  a.dout = r.block(t, BH * a.Lq * a.Dv).ptr;
  a.dq = r.block(t, BH * a.Lq * a.D).ptr;
  a.dk = r.block(t, BH * a.Lk * a.D).ptr;
  a.dv = r.block(t, BH * a.Lk * a.Dv).ptr;
  attention_mask(r, "attention_backward", t, mask_kind, ops[0].device, a);
  if (BH == 0) return env.Undefined();
  backend_for(ops[0].device).attention_backward(t, a);
  return env.Undefined();
  VLMOE_CATCH(env)
}

// crossEntropyBackward(dtype, targetDtype): block: N, C, ignoreIndex, smoothing, logits,
// target, lse [N], g [N] (the loss rows' gradient), dlogits [N, C] (the logits' dtype)
Napi::Value CrossEntropyBackward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VLMOE_TRY
  DType t = dtype_from_int(I(info, 0)), tt = dtype_from_int(I(info, 1));
  Reader r("cross_entropy_backward");
  CrossEntropyArgs a = cross_entropy_header(r, tt);
  const DType rt = cross_entropy_row_dtype(t);
  Operand x = r.block(t, a.N * a.C), tg = r.block(tt, a.N), lse = r.block(rt, a.N), g = r.block(rt, a.N), dx = r.block(t, a.N * a.C);
  same_device("cross_entropy_backward", x.device, {&tg, &lse, &g, &dx});
  backend_for(x.device).cross_entropy_backward(t, a, x.ptr, tg.ptr, lse.ptr, g.ptr, dx.ptr);
  return env.Undefined();
  VLMOE_CATCH(env)
}

// layerNorm(dtype, hasWeight, hasBias): block: rows, cols, eps, x, [w], [b], y, mean, rstd
Napi::Value LayerNorm(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VLMOE_TRY
  DType t = dtype_from_int(I(info, 0));
  bool hw = I(info, 1) != 0, hb = I(info, 2) != 0;
  Reader r("layer_norm");
  RowArgs ra{r.n(), r.n()};
  double eps = r.f();
  const int64_t n = ra.rows * ra.cols;
  Operand x = r.block(t, n);
  Operand wo = hw ? r.block(t, ra.cols) : Operand{}, bo = hb ? r.block(t, ra.cols) : Operand{};
  void* w = wo.ptr;
  void* b = bo.ptr;
  Operand y = r.block(t, n), mean = r.block(t, ra.rows), rstd = r.block(t, ra.rows);
  same_device("layer_norm", x.device, {&wo, &bo, &y, &mean, &rstd});
  backend_for(x.device).layernorm_forward(t, ra, eps, x.ptr, w, b, y.ptr, mean.ptr, rstd.ptr);
  return env.Undefined();
  VLMOE_CATCH(env)
}

// layerNormBackward(dtype, hasWeight, wantDx, wantDw, wantDb):
// block: rows, cols, x, [w], mean, rstd, g, [dx], [dw], [db]
Napi::Value LayerNormBackward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VLMOE_TRY
  DType t = dtype_from_int(I(info, 0));
  bool hw = I(info, 1) != 0, wdx = I(info, 2) != 0, wdw = I(info, 3) != 0, wdb = I(info, 4) != 0;
  Reader r("layer_norm_backward");
  RowArgs ra{r.n(), r.n()};
  const int64_t n = ra.rows * ra.cols;
  Operand x = r.block(t, n);
  Operand wo = hw ? r.block(t, ra.cols) : Operand{};
  const void* w = wo.ptr;
  Operand mean = r.block(t, ra.rows), rstd = r.block(t, ra.rows), g = r.block(t, n);
  Operand dxo = wdx ? r.block(t, n) : Operand{}, dwo = wdw ? r.block(t, ra.cols) : Operand{}, dbo = wdb ? r.block(t, ra.cols) : Operand{};
  void* dx = dxo.ptr;
  void* dw = dwo.ptr;
  void* db = dbo.ptr;
  same_device("layer_norm_backward", x.device, {&wo, &mean, &rstd, &g, &dxo, &dwo, &dbo});
  backend_for(x.device).layernorm_backward(t, ra, x.ptr, w, mean.ptr, rstd.ptr, g.ptr, dx, dw, db);
  return env.Undefined();
  VLMOE_CATCH(env)
}

}  // namespace

void register_nn(Napi::Env env, Napi::Object exports) {
  exports.Set("softmax", Napi::Function::New(env, Softmax, "softmax"));
  exports.Set("softmaxBackward", Napi::Function::New(env, SoftmaxBackward, "softmaxBackward"));
  exports.Set("attention", Napi::Function::New(env, Attention, "attention"));
  exports.Set("attentionBackward", Napi::Function::New(env, AttentionBackward, "attentionBackward"));
  exports.Set("crossEntropy", Napi::Function::New(env, CrossEntropy, "crossEntropy"));
  exports.Set("crossEntropyBackward", Napi::Function::New(env, CrossEntropyBackward, "crossEntropyBackward"));
  exports.Set("layerNorm", Napi::Function::New(env, LayerNorm, "layerNorm"));
  exports.Set("layerNormBackward", Napi::Function::New(env, LayerNormBackward, "layerNormBackward"));
}

}  // namespace vlmoe

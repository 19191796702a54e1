// N-API bindings of @vlmoe/native-cuda. Every op is one synchronous call; numeric
// arguments travel through the shared argument block (args.h). C++ exceptions become JS
// Errors carrying the kernel's message.
#include <napi.h>

#include <initializer_list>

#ifdef VLMOE_HAVE_OPENBLAS
#include <cblas.h>
#endif

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <string>

#include "args.h"
#include "napi_errors.h"
#include "cpu/cross_entropy.h"
#include "cpu/gemm.h"
#include "cpu/index.h"
#include "cpu/grouped_gemm.h"
#include "cpu/moe_assign.h"
#include "cpu/moe_gate.h"
#include "cpu/moe_permute.h"
#include "cpu/kernels.h"
#include "napi_library.h"
#include "cpu/half_ops.h"
#include "cpu/optim.h"
#include "cpu/random.h"
#include "cuda/cuda_backend.h"
#include "storage.h"
#include "threadpool.h"

namespace vlmoe {
void register_comm(Napi::Env env, Napi::Object exports);  // comm/bindings.cpp
}

namespace vlmoe {

double g_args[kArgsLen];

namespace {

// External memory reported to V8 in batches so that small allocations do not pay a V8
// call each; every increase is matched by a decrease.
int64_t g_unreported = 0;
void adjust_external(Napi::Env env, int64_t delta) {
  g_unreported += delta;
  if (g_unreported > (1 << 20) || g_unreported < -(1 << 20)) {
    int64_t out;
    napi_adjust_external_memory(env, g_unreported, &out);
    g_unreported = 0;
  }
}

inline int I(const Napi::CallbackInfo& info, size_t i) { return info[i].As<Napi::Number>().Int32Value(); }

[[noreturn]] void no_cuda_kernel(const char* op) {
  throw std::invalid_argument(std::string(op) + " is not implemented for CUDA tensors yet");
}

Napi::Value Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("cudaCompiled", cuda_compiled());
  o.Set("cudaDevices", cuda_device_count());
  o.Set("blas", gemm_backend_name());
  o.Set("blasAvailable", gemm_openblas_available());
  o.Set("gemmKernel", gemm_simd_name());
  o.Set("gemmChoice", gemm_choice_reason());
  o.Set("threads", num_threads());
  o.Set("simd", cpu_simd_name());
  return o;
}

// Every operand of one op on one device: `op` names the op in the error. Null (absent
// optional) operands are skipped.
static void same_device(const char* op, int device, std::initializer_list<const Operand*> ops) {
  for (const Operand* o : ops)
    if (o && o->ptr && o->device != device) throw std::invalid_argument(std::string(op) + ": operands are on different devices");
}

// cublasInfo(): whether cuBLAS loads (first call searches), its version and path, or why not.
Napi::Value CublasInfoJs(const Napi::CallbackInfo& info) { return library_info_js(info.Env(), cuda_cublas_info()); }

Napi::Object OpTable(Napi::Env env) {
  Napi::Object ops = Napi::Object::New(env);
  int i;
#define VLMOE_NAME(name, kind, expr) t.Set(#name, i++);
  {
    Napi::Object t = Napi::Object::New(env);
    i = 0;
    VLMOE_UNARY_OPS(VLMOE_NAME)
    ops.Set("unary", t);
  }
  {
    Napi::Object t = Napi::Object::New(env);
    i = 0;
    VLMOE_PRED_OPS(VLMOE_NAME)
    ops.Set("pred", t);
  }
  {
    Napi::Object t = Napi::Object::New(env);
    i = 0;
    VLMOE_BINARY_OPS(VLMOE_NAME)
    ops.Set("binary", t);
  }
  {
    Napi::Object t = Napi::Object::New(env);
    i = 0;
    VLMOE_CMP_OPS(VLMOE_NAME)
    ops.Set("compare", t);
  }
#undef VLMOE_NAME
  return ops;
}

// alloc(device, nbytes) -> handle
Napi::Value Alloc(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VLMOE_TRY
  int device = I(info, 0);
  double nb = info[1].As<Napi::Number>().DoubleValue();
  if (!(nb >= 0) || nb > 4503599627370496.0) throw std::invalid_argument("alloc: size must be between 0 and 2^52 bytes, got " + std::to_string(nb));
  int32_t h = storage_alloc(device, static_cast<size_t>(nb));
  if (device == kCpu) adjust_external(env, static_cast<int64_t>(nb));
  return Napi::Number::New(env, h);
  VLMOE_CATCH(env)
}

// free(handle, arrayBuffer?) — detaches the cached CPU view so stale views read nothing.
Napi::Value Free(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VLMOE_TRY
  int32_t h = I(info, 0);
  const Buffer& b = storage_get(h);
  if (info.Length() > 1 && info[1].IsArrayBuffer()) napi_detach_arraybuffer(env, info[1]);
  if (b.device == kCpu) adjust_external(env, -static_cast<int64_t>(b.nbytes));
  storage_free(h);
  return env.Undefined();
  VLMOE_CATCH(env)
}

// arrayBuffer(handle) -> ArrayBuffer over a CPU storage (no copy).
Napi::Value ArrayBufferOf(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VLMOE_TRY
  const Buffer& b = storage_get(I(info, 0));
  if (b.device != kCpu) throw std::invalid_argument("arrayBuffer: storage is on cuda:" + std::to_string(b.device) + "; copy it to the CPU first");
  return Napi::ArrayBuffer::New(env, b.ptr, b.nbytes);
  VLMOE_CATCH(env)
}

// write(handle, byteOffset, typedArray) / read(handle, byteOffset, typedArray): host copies.
Napi::Value Copy(const Napi::CallbackInfo& info, bool to_storage) {
  Napi::Env env = info.Env();
  VLMOE_TRY
  const Buffer& b = storage_get(I(info, 0));
  size_t off = static_cast<size_t>(info[1].As<Napi::Number>().DoubleValue());
  Napi::TypedArray ta = info[2].As<Napi::TypedArray>();
  size_t n = ta.ByteLength();
  char* host = static_cast<char*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
  if (off + n > b.nbytes) throw std::out_of_range("copy: range outside the storage");
  char* dev = static_cast<char*>(b.ptr) + off;
  if (b.device == kCpu) {
    if (to_storage) std::memcpy(dev, host, n);
    else std::memcpy(host, dev, n);
  } else if (to_storage) {
    cuda_copy_h2d(b.device, dev, host, n);
  } else {
    cuda_copy_d2h(b.device, host, dev, n);
  }
  return env.Undefined();
  VLMOE_CATCH(env)
}
Napi::Value Write(const Napi::CallbackInfo& info) { return Copy(info, true); }
Napi::Value Read(const Napi::CallbackInfo& info) { return Copy(info, false); }

Napi::Value Args(const Napi::CallbackInfo& info) {
  return Napi::ArrayBuffer::New(info.Env(), g_args, sizeof(g_args));
}

// ew(kind, op, dtypeIn, dtypeOut): 0 unary, 1 predicate, 2 binary, 3 compare, 4 where.
// Block: iter, then s0, s1.
Napi::Value Elementwise(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VLMOE_TRY
  const int kind = I(info, 0), op = I(info, 1);
  const DType in = dtype_from_int(I(info, 2)), out = dtype_from_int(I(info, 3));
  Reader r("elementwise");
  int device;
  switch (kind) {
    case 0: {
      DType ts[2] = {out, in};
      Iter it = r.iter(2, ts, &device);
      if (is_half(in) || is_half(out)) {  // half precision: casts only
        if (UnaryOp(op) != UnaryOp::copy) half_unsupported(is_half(in) ? in : out);
        if (device == kCpu) half_cast(in, out, it);
        else cuda_half_cast(device, in, out, it);
        break;
      }
      OpParams p{r.f(), r.f()};
      if (op < 0 || op >= int(UnaryOp::kCount)) throw std::invalid_argument("unknown unary op");
      if (device == kCpu) VLMOE_CPU(unary, UnaryOp(op), in, out, it, p);
      else cuda_unary(device, UnaryOp(op), in, out, it, p);
      break;
    }
    case 1: {
      DType ts[2] = {DType::b8, in};
      Iter it = r.iter(2, ts, &device);
      if (op < 0 || op >= int(PredOp::kCount)) throw std::invalid_argument("unknown predicate op");
      if (device == kCpu) VLMOE_CPU(pred, PredOp(op), in, it);
      else cuda_pred(device, PredOp(op), in, it);
      break;
    }
    case 2: {
      DType ts[3] = {in, in, in};
      Iter it = r.iter(3, ts, &device);
      OpParams p{r.f(), r.f()};
      if (op < 0 || op >= int(BinaryOp::kCount)) throw std::invalid_argument("unknown binary op");
      if (device == kCpu) VLMOE_CPU(binary, BinaryOp(op), in, it, p);
      else cuda_binary(device, BinaryOp(op), in, it, p);
      break;
    }
    case 3: {
      DType ts[3] = {DType::b8, in, in};
      Iter it = r.iter(3, ts, &device);
      if (op < 0 || op >= int(CmpOp::kCount)) throw std::invalid_argument("unknown compare op");
      if (device == kCpu) VLMOE_CPU(compare, CmpOp(op), in, it);
      else cuda_compare(device, CmpOp(op), in, it);
      break;
    }
    case 4: {
      DType ts[4] = {in, DType::b8, in, in};
      Iter it = r.iter(4, ts, &device);
      if (device == kCpu) VLMOE_CPU(where, in, it);
      else cuda_where(device, in, it);
      break;
    }
    default: throw std::invalid_argument("unknown elementwise kind");
  }
  return env.Undefined();
  VLMOE_CATCH(env)
}

// fill(dtype): block: handle, offset, n, value
Napi::Value Fill(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VLMOE_TRY
  DType t = dtype_from_int(I(info, 0));
  Reader r("fill");
  int64_t n = static_cast<int64_t>(g_args[2]);
  Operand o = r.block(t, n);
  r.n();  // n, already read
  double v = r.f();
  if (is_half(t)) {
    if (o.device == kCpu) half_fill(t, o.ptr, n, v);
    else cuda_half_fill(o.device, t, o.ptr, n, v);
    return env.Undefined();
  }
  if (o.device == kCpu) VLMOE_CPU(fill, t, o.ptr, n, v);
  else cuda_fill(o.device, t, o.ptr, n, v);
  return env.Undefined();
  VLMOE_CATCH(env)
}

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
  if (device != kCpu) cuda_reduce(device, op, t, it, with_index);
  else VLMOE_CPU(reduce, op, t, it, nullptr, with_index, nullptr, nullptr);
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
  if (device != kCpu) cuda_cumsum(device, t, it, len, sin, sout);
  else VLMOE_CPU(cumsum, t, it, len, sin, sout);
  return env.Undefined();
  VLMOE_CATCH(env)
}

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
  if (x.device != kCpu) cuda_softmax(x.device, t, a);
  else VLMOE_CPU(softmax_forward, t, a);
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
  if (y.device != kCpu) cuda_softmax_backward(y.device, t, ra, log, y.ptr, g.ptr, dx.ptr);
  else VLMOE_CPU(softmax_backward, t, ra, log, y.ptr, g.ptr, dx.ptr);
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
  if (ops[0].device != kCpu) cuda_attention_forward(ops[0].device, t, a);
  else VLMOE_CPU(attention_forward, t, a);
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
  if (x.device != kCpu) cuda_cross_entropy_forward(x.device, t, a, x.ptr, tg.ptr, loss.ptr, lse.ptr);
  else cross_entropy_forward(t, a, x.ptr, tg.ptr, loss.ptr, lse.ptr);
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
  if (ops[0].device != kCpu) cuda_attention_backward(ops[0].device, t, a);
  else VLMOE_CPU(attention_backward, t, a);
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
  if (x.device != kCpu) cuda_cross_entropy_backward(x.device, t, a, x.ptr, tg.ptr, lse.ptr, g.ptr, dx.ptr);
  else cross_entropy_backward(t, a, x.ptr, tg.ptr, lse.ptr, g.ptr, dx.ptr);
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
  if (x.device != kCpu) cuda_layernorm_forward(x.device, t, ra, eps, x.ptr, w, b, y.ptr, mean.ptr, rstd.ptr);
  else VLMOE_CPU(layernorm_forward, t, ra, eps, x.ptr, w, b, y.ptr, mean.ptr, rstd.ptr);
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
  if (x.device != kCpu) cuda_layernorm_backward(x.device, t, ra, x.ptr, w, mean.ptr, rstd.ptr, g.ptr, dx, dw, db);
  else VLMOE_CPU(layernorm_backward, t, ra, x.ptr, w, mean.ptr, rstd.ptr, g.ptr, dx, dw, db);
  return env.Undefined();
  VLMOE_CATCH(env)
}

// moeAssign(policy, hasPriority, wantFirst, wantRow): block: S, k, E, C, expert(i64 [S·k]),
// priority(f64 [S·k], when hasPriority), slot(i64 [S·k]), countsBefore(i64 [E]),
// countsAfter(i64 [E]), countsFirst(i64 [E], when wantFirst), row(i64 [S·k], when wantRow)
Napi::Value MoeAssign(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VLMOE_TRY
  int policy = static_cast<int>(I(info, 0));
  bool hasPriority = I(info, 1) != 0;
  bool wantFirst = info.Length() > 2 && I(info, 2) != 0, wantRow = info.Length() > 3 && I(info, 3) != 0;
  Reader r("moe_assign");
  int64_t S = r.n(), k = r.n(), E = r.n(), C = r.n();
  if (S < 0 || k < 1 || E < 1 || C < 0) throw std::invalid_argument("moe_assign: bad sizes S=" + std::to_string(S) + " k=" + std::to_string(k) + " E=" + std::to_string(E) + " C=" + std::to_string(C));
  Operand ex = r.block(DType::i64, S * k);
  Operand pr = hasPriority ? r.block(DType::f64, S * k) : Operand{};
  Operand sl = r.block(DType::i64, S * k), cb = r.block(DType::i64, E), ca = r.block(DType::i64, E);
  Operand cfo = wantFirst ? r.block(DType::i64, E) : Operand{}, rwo = wantRow ? r.block(DType::i64, S * k) : Operand{};
  int64_t* cf = reinterpret_cast<int64_t*>(cfo.ptr);
  int64_t* rw = reinterpret_cast<int64_t*>(rwo.ptr);
  same_device("moe_assign", ex.device, {&sl, &cb, &ca, hasPriority ? &pr : nullptr, &cfo, &rwo});
  if (ex.device != kCpu) {
    cuda_moe_assign(ex.device, S, k, E, C, policy, reinterpret_cast<const int64_t*>(ex.ptr), hasPriority ? reinterpret_cast<const double*>(pr.ptr) : nullptr,
                    reinterpret_cast<int64_t*>(sl.ptr), reinterpret_cast<int64_t*>(cb.ptr), reinterpret_cast<int64_t*>(ca.ptr), cf, rw);
    return env.Undefined();
  }
  moe_assign(S, k, E, C, policy, reinterpret_cast<const int64_t*>(ex.ptr), hasPriority ? reinterpret_cast<const double*>(pr.ptr) : nullptr,
             reinterpret_cast<int64_t*>(sl.ptr), reinterpret_cast<int64_t*>(cb.ptr), reinterpret_cast<int64_t*>(ca.ptr), cf, rw);
  return env.Undefined();
  VLMOE_CATCH(env)
}

// The fused gating's header: S, E, k, P, eps, auxScale (semantics in cpu/moe_gate.h).
static MoeGateArgs moe_gate_header(Reader& r, const char* op) {
  MoeGateArgs a;
  a.S = r.n();
  a.E = r.n();
  a.k = r.n();
  a.P = r.n();
  a.eps = r.f();
  a.aux_scale = r.f();
  if (a.S < 0 || a.E < 1 || a.k < 1 || a.k > std::min(a.E, kMoeGateMaxK) || a.P < 1 || a.P > 65535)
    throw std::invalid_argument(std::string(op) + ": bad sizes S=" + std::to_string(a.S) + " E=" + std::to_string(a.E) + " k=" + std::to_string(a.k) +
                                " P=" + std::to_string(a.P) + " (need E ≥ 1, 1 ≤ k ≤ min(E, 8), 1 ≤ P ≤ 65535)");
  return a;
}

// moeGate(dtype, wantTopval, wantLse): block: the header, logits [S·E] (dtype), gates [S·E],
// index (i64 [S·k]), [topval (f64 [S·k])], colPartial (f64 [P·E]), [lse [S]]; gates and lse
// float64 for float64 logits, else float32.
Napi::Value MoeGate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VLMOE_TRY
  DType t = dtype_from_int(I(info, 0));
  const bool wantTop = I(info, 1) != 0, wantLse = I(info, 2) != 0;
  Reader r("moe_gate");
  MoeGateArgs a = moe_gate_header(r, "moe_gate");
  const DType rt = moe_gate_row_dtype(t);
  Operand x = r.block(t, a.S * a.E), g = r.block(rt, a.S * a.E), ix = r.block(DType::i64, a.S * a.k);
  Operand tv = wantTop ? r.block(DType::f64, a.S * a.k) : Operand{};
  Operand cp = r.block(DType::f64, a.P * a.E);
  Operand ls = wantLse ? r.block(rt, a.S) : Operand{};
  same_device("moe_gate", x.device, {&g, &ix, &tv, &cp, &ls});
  if (x.device != kCpu)
    cuda_moe_gate_forward(x.device, t, a, x.ptr, g.ptr, reinterpret_cast<int64_t*>(ix.ptr), reinterpret_cast<double*>(tv.ptr), reinterpret_cast<double*>(cp.ptr), ls.ptr);
  else moe_gate_forward(t, a, x.ptr, g.ptr, reinterpret_cast<int64_t*>(ix.ptr), reinterpret_cast<double*>(tv.ptr), reinterpret_cast<double*>(cp.ptr), ls.ptr);
  return env.Undefined();
  VLMOE_CATCH(env)
}

// moeCombine(dtype, wantZ): block: the header, gates [S·E] (dtype: float32 / float64),
// index, slot (i64 [S·k]), colPartial (f64 [P·E]), counts (i64 [E]), [lse [S]], cw [S·k],
// aux [1], [z [1]].
Napi::Value MoeCombine(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VLMOE_TRY
  DType t = dtype_from_int(I(info, 0));
  const bool wantZ = I(info, 1) != 0;
  Reader r("moe_combine");
  MoeGateArgs a = moe_gate_header(r, "moe_combine");
  Operand g = r.block(t, a.S * a.E), ix = r.block(DType::i64, a.S * a.k), sl = r.block(DType::i64, a.S * a.k), cp = r.block(DType::f64, a.P * a.E);
  Operand cn = r.block(DType::i64, a.E);
  Operand ls = wantZ ? r.block(t, a.S) : Operand{};
  Operand cw = r.block(t, a.S * a.k), ax = r.block(t, 1);
  Operand zz = wantZ ? r.block(t, 1) : Operand{};
  same_device("moe_combine", g.device, {&ix, &sl, &cp, &cn, &ls, &cw, &ax, &zz});
  const auto* pix = reinterpret_cast<const int64_t*>(ix.ptr);
  const auto* psl = reinterpret_cast<const int64_t*>(sl.ptr);
  const auto* pcp = reinterpret_cast<const double*>(cp.ptr);
  const auto* pcn = reinterpret_cast<const int64_t*>(cn.ptr);
  if (g.device != kCpu) cuda_moe_combine_forward(g.device, t, a, g.ptr, pix, psl, pcp, pcn, ls.ptr, cw.ptr, ax.ptr, zz.ptr);
  else moe_combine_forward(t, a, g.ptr, pix, psl, pcp, pcn, ls.ptr, cw.ptr, ax.ptr, zz.ptr);
  return env.Undefined();
  VLMOE_CATCH(env)
}

// moeGateBackward(dtype, hasGGates, hasGcw, hasGaux, hasGz): block: the header, gates [S·E],
// index, slot (i64 [S·k]), counts (i64 [E]), [lse [S], with gz], [gGates [S·E]], [gcw [S·k]],
// [gaux [1]], [gz [1]], dlogits [S·E] (dtype, the logits'; the rest in its row dtype).
Napi::Value MoeGateBackward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VLMOE_TRY
  DType t = dtype_from_int(I(info, 0));
  const bool hG = I(info, 1) != 0, hC = I(info, 2) != 0, hA = I(info, 3) != 0, hZ = I(info, 4) != 0;
  Reader r("moe_gate_backward");
  MoeGateArgs a = moe_gate_header(r, "moe_gate_backward");
  const DType rt = moe_gate_row_dtype(t);
  Operand g = r.block(rt, a.S * a.E), ix = r.block(DType::i64, a.S * a.k), sl = r.block(DType::i64, a.S * a.k), cn = r.block(DType::i64, a.E);
  Operand ls = hZ ? r.block(rt, a.S) : Operand{};
  Operand gG = hG ? r.block(rt, a.S * a.E) : Operand{}, gC = hC ? r.block(rt, a.S * a.k) : Operand{};
  Operand gA = hA ? r.block(rt, 1) : Operand{}, gZ = hZ ? r.block(rt, 1) : Operand{};
  Operand dx = r.block(t, a.S * a.E);
  same_device("moe_gate_backward", g.device, {&ix, &sl, &cn, &ls, &gG, &gC, &gA, &gZ, &dx});
  const auto* pix = reinterpret_cast<const int64_t*>(ix.ptr);
  const auto* psl = reinterpret_cast<const int64_t*>(sl.ptr);
  const auto* pcn = reinterpret_cast<const int64_t*>(cn.ptr);
  if (g.device != kCpu) cuda_moe_gate_backward(g.device, t, a, g.ptr, pix, psl, pcn, ls.ptr, gG.ptr, gC.ptr, gA.ptr, gZ.ptr, dx.ptr);
  else moe_gate_backward(t, a, g.ptr, pix, psl, pcn, ls.ptr, gG.ptr, gC.ptr, gA.ptr, gZ.ptr, dx.ptr);
  return env.Undefined();
  VLMOE_CATCH(env)
}

// The shared header of the permute ops: S, k, d, R, row (i64 [S·k], checked: distinct, in [-1, R)).
struct PermuteArgs {
  int64_t S, k, d, R;
  const int64_t* row;
  int device;
};
static PermuteArgs read_permute(Reader& r, const char* op) {
  PermuteArgs p{r.n(), r.n(), r.n(), r.n(), nullptr, kCpu};
  if (p.S < 0 || p.k < 1 || p.d < 0 || p.R < 0)
    throw std::invalid_argument(std::string(op) + ": bad sizes S=" + std::to_string(p.S) + " k=" + std::to_string(p.k) + " d=" + std::to_string(p.d) + " R=" + std::to_string(p.R));
  Operand row = r.block(DType::i64, p.S * p.k);
  p.row = reinterpret_cast<const int64_t*>(row.ptr);
  p.device = row.device;
  if (row.device != kCpu) cuda_moe_check_rows(row.device, p.S, p.k, p.R, p.row);  // reported at the next synchronisation
  else moe_check_rows(p.S, p.k, p.R, p.row, op);
  return p;
}

// moePermute(dtype, hasWeight, unpermute): block: S, k, d, R, row, [w (S·k)], src, dst.
// Permute: src [S·d] tokens → dst [R·d] buffer. Unpermute (+ combine): src [R·d] → dst [S·d].
Napi::Value MoePermute(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VLMOE_TRY
  DType t = dtype_from_int(I(info, 0));
  bool hw = I(info, 1) != 0, un = I(info, 2) != 0;
  const char* op = un ? "moe_unpermute" : "moe_permute";
  Reader r(op);
  PermuteArgs p = read_permute(r, op);
  Operand wo = hw ? r.block(t, p.S * p.k) : Operand{};
  const void* w = wo.ptr;
  const int64_t tokens = p.S * p.d, rows = p.R * p.d;
  Operand src = r.block(t, un ? rows : tokens), dst = r.block(t, un ? tokens : rows);
  same_device(op, p.device, {&wo, &src, &dst});
  if (p.device != kCpu) cuda_moe_permute(p.device, t, un, p.S, p.k, p.d, p.R, p.row, w, src.ptr, dst.ptr);
  else (un ? moe_unpermute : moe_permute)(t, p.S, p.k, p.d, p.R, p.row, w, src.ptr, dst.ptr);
  return env.Undefined();
  VLMOE_CATCH(env)
}

// moeUnpermuteWeightGrad(dtype): block: S, k, d, R, row, dout (S·d), y (R·d), dw (S·k)
Napi::Value MoeUnpermuteWeightGrad(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VLMOE_TRY
  DType t = dtype_from_int(I(info, 0));
  Reader r("moe_unpermute_weight_grad");
  PermuteArgs p = read_permute(r, "moe_unpermute_weight_grad");
  Operand dout = r.block(t, p.S * p.d), y = r.block(t, p.R * p.d), dw = r.block(t, p.S * p.k);
  if (dout.device != p.device || y.device != p.device || dw.device != p.device) throw std::invalid_argument("moe_unpermute_weight_grad: operands are on different devices");
  if (p.device != kCpu) cuda_moe_unpermute_weight_grad(p.device, t, p.S, p.k, p.d, p.R, p.row, dout.ptr, y.ptr, dw.ptr);
  else moe_unpermute_weight_grad(t, p.S, p.k, p.d, p.R, p.row, dout.ptr, y.ptr, dw.ptr);
  return env.Undefined();
  VLMOE_CATCH(env)
}

// The shared header of the grouped linear ops: G, K, N, R, sizes (i64 [G], ≥ 0, summing to R).
static const int64_t* read_groups(Reader& r, const char* op, int64_t& G, int64_t& K, int64_t& N, int64_t& R) {
  G = r.n(), K = r.n(), N = r.n(), R = r.n();
  if (G < 1 || K < 0 || N < 0 || R < 0)
    throw std::invalid_argument(std::string(op) + ": bad sizes G=" + std::to_string(G) + " K=" + std::to_string(K) + " N=" + std::to_string(N) + " R=" + std::to_string(R));
  Operand sz = r.block(DType::i64, G);
  const int64_t* sizes = reinterpret_cast<const int64_t*>(sz.ptr);
  if (sz.device != kCpu) {  // the per-group GEMMs are launched from the host: read the sizes back
    static thread_local std::vector<int64_t> host;
    host.resize(static_cast<size_t>(G));
    cuda_copy_d2h(sz.device, host.data(), sz.ptr, sizeof(int64_t) * static_cast<size_t>(G));
    sizes = host.data();
  }
  int64_t sum = 0;
  for (int64_t g = 0; g < G; ++g) {
    if (sizes[g] < 0) throw std::invalid_argument(std::string(op) + ": group " + std::to_string(g) + " has negative size " + std::to_string(sizes[g]));
    sum += sizes[g];
  }
  if (sum != R) throw std::invalid_argument(std::string(op) + ": group sizes sum to " + std::to_string(sum) + " but the input has " + std::to_string(R) + " rows");
  return sizes;
}

// The grouped ops' dtype argument names the GEMM operands (x and the weights). bfloat16 /
// float16 operands (autocast, CUDA only) multiply with float32 accumulation, and every other
// operand (biases, outputs, activations, gradients) is float32; otherwise all share it.
static DType grouped_acc_dtype(DType t) { return is_half(t) ? DType::f32 : t; }

// groupedLinear(dtype, hasBias, reference): block: G, K, N, R, sizes, x (R·K), w (G·K·N), [b (G·N)], y (R·N)
Napi::Value GroupedLinear(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VLMOE_TRY
  DType t = dtype_from_int(I(info, 0));
  bool hb = I(info, 1) != 0, ref = I(info, 2) != 0;
  Reader r("grouped_linear");
  int64_t G, K, N, R;
  const int64_t* sizes = read_groups(r, "grouped_linear", G, K, N, R);
  const DType at = grouped_acc_dtype(t);
  Operand x = r.block(t, R * K), w = r.block(t, G * K * N);
  Operand bo = hb ? r.block(at, G * N) : Operand{};
  const void* b = bo.ptr;
  Operand y = r.block(at, R * N);
  same_device("grouped_linear", x.device, {&w, &bo, &y});
  if (x.device != kCpu) cuda_grouped_linear_forward(x.device, t, G, sizes, K, N, x.ptr, w.ptr, b, y.ptr, ref);
  else grouped_linear_forward(t, G, sizes, K, N, x.ptr, w.ptr, b, y.ptr, ref);
  return env.Undefined();
  VLMOE_CATCH(env)
}

// groupedLinearBackward(dtype, wantDx, wantDw, wantDb, reference):
// block: G, K, N, R, sizes, x (R·K), w (G·K·N), dy (R·N), [dx (R·K)], [dw (G·K·N)], [db (G·N)]
Napi::Value GroupedLinearBackward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VLMOE_TRY
  DType t = dtype_from_int(I(info, 0));
  bool wdx = I(info, 1) != 0, wdw = I(info, 2) != 0, wdb = I(info, 3) != 0, ref = I(info, 4) != 0;
  Reader r("grouped_linear_backward");
  int64_t G, K, N, R;
  const int64_t* sizes = read_groups(r, "grouped_linear_backward", G, K, N, R);
  const DType at = grouped_acc_dtype(t);
  Operand x = r.block(t, R * K), w = r.block(t, G * K * N), dy = r.block(at, R * N);
  Operand dxo = wdx ? r.block(at, R * K) : Operand{}, dwo = wdw ? r.block(at, G * K * N) : Operand{}, dbo = wdb ? r.block(at, G * N) : Operand{};
  void* dx = dxo.ptr;
  void* dw = dwo.ptr;
  void* db = dbo.ptr;
  same_device("grouped_linear_backward", x.device, {&w, &dy, &dxo, &dwo, &dbo});
  if (x.device != kCpu) cuda_grouped_linear_backward(x.device, t, G, sizes, K, N, x.ptr, w.ptr, dy.ptr, dx, dw, db, ref);
  else grouped_linear_backward(t, G, sizes, K, N, x.ptr, w.ptr, dy.ptr, dx, dw, db, ref);
  return env.Undefined();
  VLMOE_CATCH(env)
}

// expertFFN(dtype, act, hasB1, hasB2, reference): block: G, D, H, R, sizes, x (R·D), w1 (G·D·H),
// [b1 (G·H)], w2 (G·H·D), [b2 (G·D)], pre (R·H), hid (R·H), y (R·D)
Napi::Value ExpertFFN(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VLMOE_TRY
  DType t = dtype_from_int(I(info, 0));
  int act = I(info, 1);
  bool hb1 = I(info, 2) != 0, hb2 = I(info, 3) != 0, ref = I(info, 4) != 0;
  Reader r("expert_ffn");
  int64_t G, D, H, R;
  const int64_t* sizes = read_groups(r, "expert_ffn", G, D, H, R);
  const DType at = grouped_acc_dtype(t);
  Operand x = r.block(t, R * D), w1 = r.block(t, G * D * H);
  Operand b1o = hb1 ? r.block(at, G * H) : Operand{};
  const void* b1 = b1o.ptr;
  Operand w2 = r.block(t, G * H * D);
  Operand b2o = hb2 ? r.block(at, G * D) : Operand{};
  const void* b2 = b2o.ptr;
  Operand pre = r.block(at, R * H), hid = r.block(at, R * H), y = r.block(at, R * D);
  same_device("expert_ffn", x.device, {&w1, &b1o, &w2, &b2o, &pre, &hid, &y});
  if (x.device != kCpu) cuda_expert_ffn_forward(x.device, t, G, sizes, D, H, act, x.ptr, w1.ptr, b1, w2.ptr, b2, pre.ptr, hid.ptr, y.ptr, ref);
  else expert_ffn_forward(t, G, sizes, D, H, act, x.ptr, w1.ptr, b1, w2.ptr, b2, pre.ptr, hid.ptr, y.ptr, ref);
  return env.Undefined();
  VLMOE_CATCH(env)
}

// expertFFNBackward(dtype, act, wantMask, reference): wantMask bits 1 dx, 2 dw1, 4 db1, 8 dw2, 16 db2.
// block: G, D, H, R, sizes, x, w1, w2, pre, hid, dy (R·D), scratch (R·H), then the wanted of
// dx (R·D), dw1 (G·D·H), db1 (G·H), dw2 (G·H·D), db2 (G·D)
Napi::Value ExpertFFNBackward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VLMOE_TRY
  DType t = dtype_from_int(I(info, 0));
  int act = I(info, 1), want = I(info, 2);
  bool ref = I(info, 3) != 0;
  Reader r("expert_ffn_backward");
  int64_t G, D, H, R;
  const int64_t* sizes = read_groups(r, "expert_ffn_backward", G, D, H, R);
  const DType at = grouped_acc_dtype(t);
  Operand x = r.block(t, R * D), w1 = r.block(t, G * D * H), w2 = r.block(t, G * H * D);
  Operand pre = r.block(at, R * H), hid = r.block(at, R * H), dy = r.block(at, R * D), scratch = r.block(at, R * H);
  Operand o[5];
  const int64_t sizes_of[5] = {R * D, G * D * H, G * H, G * H * D, G * D};
  for (int i = 0; i < 5; ++i) o[i] = (want & (1 << i)) ? r.block(at, sizes_of[i]) : Operand{};
  void *dx = o[0].ptr, *dw1 = o[1].ptr, *db1 = o[2].ptr, *dw2 = o[3].ptr, *db2 = o[4].ptr;
  same_device("expert_ffn_backward", x.device, {&w1, &w2, &pre, &hid, &dy, &scratch, &o[0], &o[1], &o[2], &o[3], &o[4]});
  if (x.device != kCpu)
    cuda_expert_ffn_backward(x.device, t, G, sizes, D, H, act, x.ptr, w1.ptr, w2.ptr, pre.ptr, hid.ptr, dy.ptr, scratch.ptr, dx, dw1, db1, dw2, db2, ref);
  else
    expert_ffn_backward(t, G, sizes, D, H, act, x.ptr, w1.ptr, w2.ptr, pre.ptr, hid.ptr, dy.ptr, scratch.ptr, dx, dw1, db1, dw2, db2, ref);
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
  if (x.device != kCpu) cuda_topk(x.device, t, ra, k, largest, x.ptr, v.ptr, reinterpret_cast<int64_t*>(ix.ptr));
  else VLMOE_CPU(topk, t, ra, k, largest, x.ptr, v.ptr, reinterpret_cast<int64_t*>(ix.ptr));
  return env.Undefined();
  VLMOE_CATCH(env)
}

// gemm(dtype, transA, transB): block: batch, M, N, K, alpha, beta, lda, ldb, ldc,
// strideA, strideB, strideC, A, B, C (handle, offset each)
Napi::Value Gemm(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VLMOE_TRY
  DType t = dtype_from_int(I(info, 0));
  bool ta = I(info, 1) != 0, tb = I(info, 2) != 0;
  const DType ct = info.Length() > 3 ? dtype_from_int(I(info, 3)) : t;  // C's dtype (float32 for a mixed-precision product)
  Reader r("matmul");
  int64_t batch = r.n(), M = r.n(), N = r.n(), K = r.n();
  double alpha = r.f(), beta = r.f();
  int64_t lda = r.n(), ldb = r.n(), ldc = r.n(), sA = r.n(), sB = r.n(), sC = r.n();
  auto reach = [&](int64_t rows, int64_t cols, int64_t ld, int64_t s) {
    return (rows == 0 || cols == 0 || batch == 0) ? int64_t(-1) : (batch - 1) * s + (rows - 1) * ld + cols - 1;
  };
  Operand A = r.ptr(t, 0, ta ? reach(K, M, lda, sA) : reach(M, K, lda, sA));
  Operand B = r.ptr(t, 0, tb ? reach(N, K, ldb, sB) : reach(K, N, ldb, sB));
  Operand C = r.ptr(ct, 0, reach(M, N, ldc, sC));
  if (is_half(t) || ct != t) {
    if (A.device != C.device || B.device != C.device) throw std::invalid_argument("matmul: operands are on different devices");
    if (C.device != kCpu) cuda_gemm_half(C.device, t, ct, batch, ta, tb, M, N, K, alpha, A.ptr, lda, sA, B.ptr, ldb, sB, beta, C.ptr, ldc, sC, false);
    else gemm_half_cpu(t, ct, batch, ta, tb, M, N, K, alpha, A.ptr, lda, sA, B.ptr, ldb, sB, beta, C.ptr, ldc, sC);
    return env.Undefined();
  }
  if (A.device != kCpu || B.device != kCpu || C.device != kCpu) {
    if (A.device != C.device || B.device != C.device) throw std::invalid_argument("matmul: operands are on different devices");
    cuda_gemm(C.device, t, batch, ta, tb, M, N, K, alpha, A.ptr, lda, sA, B.ptr, ldb, sB, beta, C.ptr, ldc, sC, false);
    return env.Undefined();
  }
  if (t == DType::f32)
    gemm_batched_f32(batch, ta, tb, M, N, K, float(alpha), reinterpret_cast<const float*>(A.ptr), lda, sA,
                     reinterpret_cast<const float*>(B.ptr), ldb, sB, float(beta), reinterpret_cast<float*>(C.ptr), ldc, sC);
  else if (t == DType::f64)
    gemm_batched_f64(batch, ta, tb, M, N, K, alpha, reinterpret_cast<const double*>(A.ptr), lda, sA,
                     reinterpret_cast<const double*>(B.ptr), ldb, sB, beta, reinterpret_cast<double*>(C.ptr), ldc, sC);
  else
    throw std::invalid_argument(std::string("matmul: dtype ") + dtype_name(t) + " is not supported (use float32 or float64)");
  return env.Undefined();
  VLMOE_CATCH(env)
}

// gemmReference(dtype, transA, transB): same block as gemm, plain triple loop (tests).
Napi::Value GemmReference(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VLMOE_TRY
  DType t = dtype_from_int(I(info, 0));
  bool ta = I(info, 1) != 0, tb = I(info, 2) != 0;
  Reader r("gemm_reference");
  int64_t batch = r.n(), M = r.n(), N = r.n(), K = r.n();
  double alpha = r.f(), beta = r.f();
  int64_t lda = r.n(), ldb = r.n(), ldc = r.n(), sA = r.n(), sB = r.n(), sC = r.n();
  auto reach = [&](int64_t rows, int64_t cols, int64_t ld, int64_t s) {
    return (rows == 0 || cols == 0 || batch == 0) ? int64_t(-1) : (batch - 1) * s + (rows - 1) * ld + cols - 1;
  };
  Operand A = r.ptr(t, 0, ta ? reach(K, M, lda, sA) : reach(M, K, lda, sA));
  Operand B = r.ptr(t, 0, tb ? reach(N, K, ldb, sB) : reach(K, N, ldb, sB));
  Operand C = r.ptr(t, 0, reach(M, N, ldc, sC));
  if (A.device != kCpu || B.device != kCpu || C.device != kCpu) {
    if (A.device != C.device || B.device != C.device) throw std::invalid_argument("gemm_reference: operands are on different devices");
    cuda_gemm(C.device, t, batch, ta, tb, M, N, K, alpha, A.ptr, lda, sA, B.ptr, ldb, sB, beta, C.ptr, ldc, sC, true);  // our own kernel
    return env.Undefined();
  }
  for (int64_t b = 0; b < batch; ++b) {
    if (t == DType::f32)
      gemm_reference_f32(ta, tb, M, N, K, float(alpha), reinterpret_cast<const float*>(A.ptr) + b * sA, lda,
                         reinterpret_cast<const float*>(B.ptr) + b * sB, ldb, float(beta), reinterpret_cast<float*>(C.ptr) + b * sC, ldc);
    else if (t == DType::f64)
      gemm_reference_f64(ta, tb, M, N, K, alpha, reinterpret_cast<const double*>(A.ptr) + b * sA, lda,
                         reinterpret_cast<const double*>(B.ptr) + b * sB, ldb, beta, reinterpret_cast<double*>(C.ptr) + b * sC, ldc);
    else
      throw std::invalid_argument("gemm_reference: float32 or float64 only");
  }
  return env.Undefined();
  VLMOE_CATCH(env)
}

// blasSgemmDirect(M, N, K, A, B, C): cblas_sgemm on contiguous row-major float32 storages,
// bypassing every layer of ours — the peer of the GEMM benchmark. Returns false when the
// addon was built without OpenBLAS.
Napi::Value BlasSgemmDirect(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VLMOE_TRY
  int64_t M = I(info, 0), N = I(info, 1), K = I(info, 2);
  const Buffer& a = storage_get(I(info, 3));
  const Buffer& b = storage_get(I(info, 4));
  const Buffer& c = storage_get(I(info, 5));
  if (a.nbytes < size_t(M * K * 4) || b.nbytes < size_t(K * N * 4) || c.nbytes < size_t(M * N * 4))
    throw std::out_of_range("blasSgemmDirect: storages are smaller than the product");
#ifdef VLMOE_HAVE_OPENBLAS
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(M), int(N), int(K), 1.0f, static_cast<const float*>(a.ptr), int(K),
              static_cast<const float*>(b.ptr), int(N), 0.0f, static_cast<float*>(c.ptr), int(N));
  return Napi::Boolean::New(env, true);
#else
  return Napi::Boolean::New(env, false);
#endif
  VLMOE_CATCH(env)
}

// indexSelect(dtype, idxDtype): block: outer, size, inner, m, x, idx, out
Napi::Value IndexSelect(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VLMOE_TRY
  DType t = dtype_from_int(I(info, 0)), it = dtype_from_int(I(info, 1));
  Reader r("index_select");
  int64_t outer = r.n(), size = r.n(), inner = r.n(), m = r.n();
  Operand x = r.block(t, outer * size * inner), idx = r.block(it, m), out = r.block(t, outer * m * inner);
  if (x.device != idx.device || out.device != x.device) throw std::invalid_argument("index_select: operands are on different devices");
  if (x.device != kCpu) cuda_index_select(x.device, t, x.ptr, outer, size, inner, it, idx.ptr, m, out.ptr);
  else index_select(t, x.ptr, outer, size, inner, it, idx.ptr, m, out.ptr);
  return env.Undefined();
  VLMOE_CATCH(env)
}

// indexAdd(dtype, idxDtype): block: outer, size, inner, m, out, idx, src
Napi::Value IndexAdd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VLMOE_TRY
  DType t = dtype_from_int(I(info, 0)), it = dtype_from_int(I(info, 1));
  Reader r("index_add");
  int64_t outer = r.n(), size = r.n(), inner = r.n(), m = r.n();
  Operand out = r.block(t, outer * size * inner), idx = r.block(it, m), src = r.block(t, outer * m * inner);
  if (out.device != idx.device || src.device != out.device) throw std::invalid_argument("index_add: operands are on different devices");
  if (out.device != kCpu) cuda_index_add(out.device, t, out.ptr, outer, size, inner, it, idx.ptr, m, src.ptr);
  else index_add(t, out.ptr, outer, size, inner, it, idx.ptr, m, src.ptr);
  return env.Undefined();
  VLMOE_CATCH(env)
}

// gather / scatterAdd(dtype, idxDtype): block: iter(3), dimStride, dimSize
Napi::Value GatherScatter(const Napi::CallbackInfo& info, bool scatter) {
  Napi::Env env = info.Env();
  VLMOE_TRY
  DType t = dtype_from_int(I(info, 0)), itype = dtype_from_int(I(info, 1));
  Reader r(scatter ? "scatter_add" : "gather");
  DType ts[3] = {t, itype, t};
  int device;
  Iter it = r.iter(3, ts, &device);
  int64_t ds = r.n(), dsize = r.n();
  if (device != kCpu) {
    if (scatter) cuda_scatter_add(device, t, itype, it, ds, dsize);
    else cuda_gather(device, t, itype, it, ds, dsize);
  } else if (scatter) {
    scatter_add(t, itype, it, ds, dsize);
  } else {
    gather(t, itype, it, ds, dsize);
  }
  return env.Undefined();
  VLMOE_CATCH(env)
}
Napi::Value Gather(const Napi::CallbackInfo& info) { return GatherScatter(info, false); }
Napi::Value ScatterAdd(const Napi::CallbackInfo& info) { return GatherScatter(info, true); }

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
  if (o.device == kCpu) {
    if (kind == 0) rand_uniform(t, o.ptr, n, seed, off, a, b);
    else if (kind == 1) rand_normal(t, o.ptr, n, seed, off, a, b);
    else rand_int(t, o.ptr, n, seed, off, static_cast<int64_t>(a), static_cast<int64_t>(b));
  } else {
    if (kind == 0) cuda_rand_uniform(o.device, t, o.ptr, n, seed, off, a, b);
    else if (kind == 1) cuda_rand_normal(o.device, t, o.ptr, n, seed, off, a, b);
    else cuda_rand_int(o.device, t, o.ptr, n, seed, off, static_cast<int64_t>(a), static_cast<int64_t>(b));
  }
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
  if (x.device != kCpu) cuda_dropout(x.device, t, x.ptr, y.ptr, reinterpret_cast<uint8_t*>(m.ptr), n, p, seed, off);
  else dropout(t, x.ptr, y.ptr, reinterpret_cast<uint8_t*>(m.ptr), n, p, seed, off);
  return env.Undefined();
  VLMOE_CATCH(env)
}

Napi::Value SetNumThreads(const Napi::CallbackInfo& info) {
  set_num_threads(I(info, 0));
  return info.Env().Undefined();
}

Napi::Value SetGemmBuiltin(const Napi::CallbackInfo& info) {
  gemm_set_force_builtin(info[0].ToBoolean().Value());
  return info.Env().Undefined();
}

Napi::Value Synchronize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VLMOE_TRY
  int d = I(info, 0);
  if (d >= 0) cuda_synchronize(d);
  return env.Undefined();
  VLMOE_CATCH(env)
}

Napi::Value EmptyCache(const Napi::CallbackInfo& info) {
  storage_empty_cache();
  return info.Env().Undefined();
}

Napi::Value Memory(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto pack = [&](const MemStats& s) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("live", double(s.live));
    o.Set("peak", double(s.peak));
    o.Set("allocs", double(s.allocs));
    o.Set("cached", double(s.cached));
    return o;
  };
  Napi::Object o = Napi::Object::New(env);
  o.Set("cpu", pack(storage_stats(kCpu)));
  Napi::Array cuda = Napi::Array::New(env);
  for (int d = 0; d <= storage_max_device(); ++d) cuda.Set(uint32_t(d), pack(storage_stats(d)));
  o.Set("cuda", cuda);
  return o;
}

// The addon's state (argument block, handle table, block cache, thread pool) is
// process-wide and unsynchronised: only one JS thread may load it.
std::atomic<bool> g_loaded{false};

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  if (g_loaded.exchange(true))
    throw Napi::Error::New(env, "@vlmoe/native-cuda is already loaded by another JavaScript thread of this process; use it from one thread (e.g. the main thread) and pass typed arrays to workers");
  Napi::Object dtypes = Napi::Object::New(env);
  for (int i = 0; i < kNumDTypes; ++i) dtypes.Set(dtype_name(DType(i)), i);
  exports.Set("dtypes", dtypes);
  register_comm(env, exports);
  exports.Set("ops", OpTable(env));
  exports.Set("info", Napi::Function::New(env, Info, "info"));
  exports.Set("cublasInfo", Napi::Function::New(env, CublasInfoJs, "cublasInfo"));
  exports.Set("alloc", Napi::Function::New(env, Alloc, "alloc"));
  exports.Set("free", Napi::Function::New(env, Free, "free"));
  exports.Set("arrayBuffer", Napi::Function::New(env, ArrayBufferOf, "arrayBuffer"));
  exports.Set("write", Napi::Function::New(env, Write, "write"));
  exports.Set("read", Napi::Function::New(env, Read, "read"));
  exports.Set("args", Napi::Function::New(env, Args, "args"));
  exports.Set("ew", Napi::Function::New(env, Elementwise, "ew"));
  exports.Set("fill", Napi::Function::New(env, Fill, "fill"));
  exports.Set("reduce", Napi::Function::New(env, Reduce, "reduce"));
  exports.Set("cumsum", Napi::Function::New(env, Cumsum, "cumsum"));
  exports.Set("softmax", Napi::Function::New(env, Softmax, "softmax"));
  exports.Set("softmaxBackward", Napi::Function::New(env, SoftmaxBackward, "softmaxBackward"));
  exports.Set("attention", Napi::Function::New(env, Attention, "attention"));
  exports.Set("attentionBackward", Napi::Function::New(env, AttentionBackward, "attentionBackward"));
  exports.Set("crossEntropy", Napi::Function::New(env, CrossEntropy, "crossEntropy"));
  exports.Set("crossEntropyBackward", Napi::Function::New(env, CrossEntropyBackward, "crossEntropyBackward"));
  exports.Set("layerNorm", Napi::Function::New(env, LayerNorm, "layerNorm"));
  exports.Set("layerNormBackward", Napi::Function::New(env, LayerNormBackward, "layerNormBackward"));
  exports.Set("topk", Napi::Function::New(env, TopK, "topk"));
  exports.Set("moeAssign", Napi::Function::New(env, MoeAssign, "moeAssign"));
  exports.Set("moeGate", Napi::Function::New(env, MoeGate, "moeGate"));
  exports.Set("moeCombine", Napi::Function::New(env, MoeCombine, "moeCombine"));
  exports.Set("moeGateBackward", Napi::Function::New(env, MoeGateBackward, "moeGateBackward"));
  exports.Set("moePermute", Napi::Function::New(env, MoePermute, "moePermute"));
  exports.Set("moeUnpermuteWeightGrad", Napi::Function::New(env, MoeUnpermuteWeightGrad, "moeUnpermuteWeightGrad"));
  exports.Set("groupedLinear", Napi::Function::New(env, GroupedLinear, "groupedLinear"));
  exports.Set("groupedLinearBackward", Napi::Function::New(env, GroupedLinearBackward, "groupedLinearBackward"));
  exports.Set("expertFFN", Napi::Function::New(env, ExpertFFN, "expertFFN"));
  exports.Set("expertFFNBackward", Napi::Function::New(env, ExpertFFNBackward, "expertFFNBackward"));
  exports.Set("gemm", Napi::Function::New(env, Gemm, "gemm"));
  exports.Set("gemmReference", Napi::Function::New(env, GemmReference, "gemmReference"));
  exports.Set("blasSgemmDirect", Napi::Function::New(env, BlasSgemmDirect, "blasSgemmDirect"));
  exports.Set("indexSelect", Napi::Function::New(env, IndexSelect, "indexSelect"));
  exports.Set("indexAdd", Napi::Function::New(env, IndexAdd, "indexAdd"));
  exports.Set("gather", Napi::Function::New(env, Gather, "gather"));
  exports.Set("scatterAdd", Napi::Function::New(env, ScatterAdd, "scatterAdd"));
  exports.Set("random", Napi::Function::New(env, Random, "random"));
  exports.Set("dropout", Napi::Function::New(env, Dropout, "dropout"));
  exports.Set("setNumThreads", Napi::Function::New(env, SetNumThreads, "setNumThreads"));
  exports.Set("setGemmBuiltin", Napi::Function::New(env, SetGemmBuiltin, "setGemmBuiltin"));
  exports.Set("synchronize", Napi::Function::New(env, Synchronize, "synchronize"));
  exports.Set("emptyCache", Napi::Function::New(env, EmptyCache, "emptyCache"));
  exports.Set("memory", Napi::Function::New(env, Memory, "memory"));
  exports.Set("adamStep", Napi::Function::New(env, OptimAdamStep, "adamStep"));
  exports.Set("sgdStep", Napi::Function::New(env, OptimSgdStep, "sgdStep"));
  exports.Set("multiTensorNorm", Napi::Function::New(env, OptimMultiTensorNorm, "multiTensorNorm"));
  exports.Set("multiTensorScale", Napi::Function::New(env, OptimMultiTensorScale, "multiTensorScale"));
  return exports;
}

}  // namespace

}  // namespace vlmoe

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return vlmoe::Init(env, exports); }
NODE_API_MODULE(vlmoe_native, InitModule)

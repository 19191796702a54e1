// N-API bindings, MoE kernels: slot assignment, fused gating, permute / unpermute, grouped GEMMs, the fused expert FFN.
// Each reads and checks its operands from the argument block, then calls the backend of their
// device (backend.h).
#include <napi.h>

#include <algorithm>
#include <vector>
#include <stdexcept>
#include <string>

#include "common.h"
#include "../cpu/moe_gate.h"

namespace vlmoe {
namespace {

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
  backend_for(ex.device).moe_assign(S, k, E, C, policy, reinterpret_cast<const int64_t*>(ex.ptr), hasPriority ? reinterpret_cast<const double*>(pr.ptr) : nullptr,
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
  backend_for(x.device).moe_gate_forward(t, a, x.ptr, g.ptr, reinterpret_cast<int64_t*>(ix.ptr), reinterpret_cast<double*>(tv.ptr), reinterpret_cast<double*>(cp.ptr), ls.ptr);
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
  backend_for(g.device).moe_combine_forward(t, a, g.ptr, pix, psl, pcp, pcn, ls.ptr, cw.ptr, ax.ptr, zz.ptr);
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
  backend_for(g.device).moe_gate_backward(t, a, g.ptr, pix, psl, pcn, ls.ptr, gG.ptr, gC.ptr, gA.ptr, gZ.ptr, dx.ptr);
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
  backend_for(row.device).moe_check_rows(p.S, p.k, p.R, p.row, op);  // a GPU reports at the next synchronisation
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
  backend_for(p.device).moe_permute(t, un, p.S, p.k, p.d, p.R, p.row, w, src.ptr, dst.ptr);
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
  backend_for(p.device).moe_unpermute_weight_grad(t, p.S, p.k, p.d, p.R, p.row, dout.ptr, y.ptr, dw.ptr);
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
    backend_for(sz.device).copy_to_host(host.data(), sz.ptr, sizeof(int64_t) * static_cast<size_t>(G));
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
  backend_for(x.device).grouped_linear_forward(t, G, sizes, K, N, x.ptr, w.ptr, b, y.ptr, ref);
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
  backend_for(x.device).grouped_linear_backward(t, G, sizes, K, N, x.ptr, w.ptr, dy.ptr, dx, dw, db, ref);
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
  backend_for(x.device).expert_ffn_forward(t, G, sizes, D, H, act, x.ptr, w1.ptr, b1, w2.ptr, b2, pre.ptr, hid.ptr, y.ptr, ref);
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
  backend_for(x.device).expert_ffn_backward(t, G, sizes, D, H, act, x.ptr, w1.ptr, w2.ptr, pre.ptr, hid.ptr, dy.ptr, scratch.ptr, dx, dw1, db1, dw2, db2, ref);
  return env.Undefined();
  VLMOE_CATCH(env)
}

}  // namespace

void register_moe(Napi::Env env, Napi::Object exports) {
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
}

}  // namespace vlmoe

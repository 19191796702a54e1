// N-API bindings, Indexing: index_select, index_add, gather, scatter_add.
// Each reads and checks its operands from the argument block, then calls the backend of their
// device (backend.h).
#include <napi.h>

#include <stdexcept>
#include <string>

#include "common.h"

namespace vlmoe {
namespace {

// indexSelect(dtype, idxDtype): block: outer, size, inner, m, x, idx, out
Napi::Value IndexSelect(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VLMOE_TRY
  DType t = dtype_from_int(I(info, 0)), it = dtype_from_int(I(info, 1));
  Reader r("index_select");
  int64_t outer = r.n(), size = r.n(), inner = r.n(), m = r.n();
  Operand x = r.block(t, outer * size * inner), idx = r.block(it, m), out = r.block(t, outer * m * inner);
  if (x.device != idx.device || out.device != x.device) throw std::invalid_argument("index_select: operands are on different devices");
  backend_for(x.device).index_select(t, x.ptr, outer, size, inner, it, idx.ptr, m, out.ptr);
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
  backend_for(out.device).index_add(t, out.ptr, outer, size, inner, it, idx.ptr, m, src.ptr);
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
  if (scatter) backend_for(device).scatter_add(t, itype, it, ds, dsize);
  else backend_for(device).gather(t, itype, it, ds, dsize);
  return env.Undefined();
  VLMOE_CATCH(env)
}

Napi::Value Gather(const Napi::CallbackInfo& info) { return GatherScatter(info, false); }

Napi::Value ScatterAdd(const Napi::CallbackInfo& info) { return GatherScatter(info, true); }

}  // namespace

void register_index(Napi::Env env, Napi::Object exports) {
  exports.Set("indexSelect", Napi::Function::New(env, IndexSelect, "indexSelect"));
  exports.Set("indexAdd", Napi::Function::New(env, IndexAdd, "indexAdd"));
  exports.Set("gather", Napi::Function::New(env, Gather, "gather"));
  exports.Set("scatterAdd", Napi::Function::New(env, ScatterAdd, "scatterAdd"));
}

}  // namespace vlmoe

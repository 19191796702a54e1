// N-API bindings, Memory: storages by handle (alloc, free, host views and copies), the argument block, fills, device synchronisation, the caching allocators' statistics.
// Each reads and checks its operands from the argument block, then calls the backend of their
// device (backend.h).
#include <napi.h>

#include <cstring>
#include <stdexcept>
#include <string>

#include "common.h"
#include "../storage.h"

namespace vlmoe {
namespace {

// External memory reported to V8 (adjustExternal), in batches so that small storages do not
// pay a V8 call each. V8 starts a mark-compact each time the amount grows ~64 MiB past its
// value at the last one. @vlmoe/tensor reports only the storages the garbage collector alone
// can free (tensors outside any scope, kept or returned to no scope: scope.ts): reporting
// every allocation made a training step's working set, allocated and freed each step, trigger
// ~55 mark-compacts per step of the small VL-MoE preset (3.6 GiB / 64 MiB), their concurrent
// marking taking a core from the kernels.
int64_t g_unreported = 0;

// adjustExternal(deltaBytes)
Napi::Value AdjustExternal(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  g_unreported += static_cast<int64_t>(info[0].As<Napi::Number>().DoubleValue());
  if (g_unreported > (1 << 20) || g_unreported < -(1 << 20)) {
    int64_t out;
    napi_adjust_external_memory(env, g_unreported, &out);
    g_unreported = 0;
  }
  return env.Undefined();
}

// alloc(device, nbytes) -> handle
Napi::Value Alloc(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VLMOE_TRY
  int device = I(info, 0);
  double nb = info[1].As<Napi::Number>().DoubleValue();
  if (!(nb >= 0) || nb > 4503599627370496.0) throw std::invalid_argument("alloc: size must be between 0 and 2^52 bytes, got " + std::to_string(nb));
  int32_t h = storage_alloc(device, static_cast<size_t>(nb));
  return Napi::Number::New(env, h);
  VLMOE_CATCH(env)
}

// mapFile(dir, nbytes) -> handle of a zero-filled CPU storage backed by an unlinked file in dir
Napi::Value MapFile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VLMOE_TRY
  const std::string dir = info[0].As<Napi::String>().Utf8Value();
  double nb = info[1].As<Napi::Number>().DoubleValue();
  if (!(nb >= 0) || nb > 4503599627370496.0) throw std::invalid_argument("mapFile: size must be between 0 and 2^52 bytes, got " + std::to_string(nb));
  return Napi::Number::New(env, storage_map_file(dir, static_cast<size_t>(nb)));
  VLMOE_CATCH(env)
}

// free(handle, arrayBuffer?) — detaches the cached CPU view so stale views read nothing.
Napi::Value Free(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VLMOE_TRY
  int32_t h = I(info, 0);
  const Buffer& b = storage_get(h);
  if (info.Length() > 1 && info[1].IsArrayBuffer()) napi_detach_arraybuffer(env, info[1]);
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
  if (to_storage) backend_for(b.device).copy_from_host(dev, host, n);
  else backend_for(b.device).copy_to_host(host, dev, n);
  return env.Undefined();
  VLMOE_CATCH(env)
}

Napi::Value Write(const Napi::CallbackInfo& info) { return Copy(info, true); }

Napi::Value Read(const Napi::CallbackInfo& info) { return Copy(info, false); }

Napi::Value Args(const Napi::CallbackInfo& info) {
  return Napi::ArrayBuffer::New(info.Env(), g_args, sizeof(g_args));
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
  backend_for(o.device).fill(t, o.ptr, n, v);
  return env.Undefined();
  VLMOE_CATCH(env)
}

Napi::Value Synchronize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VLMOE_TRY
  int d = I(info, 0);
  if (d >= 0) backend_for(d).synchronize();
  return env.Undefined();
  VLMOE_CATCH(env)
}

Napi::Value EmptyCache(const Napi::CallbackInfo& info) {
  storage_empty_cache();
  return info.Env().Undefined();
}

Napi::Value ResetPeakMemory(const Napi::CallbackInfo& info) {
  storage_reset_peak(kCpu);
  for (int d = 0; d <= storage_max_device(); ++d) storage_reset_peak(d);
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
    o.Set("file", double(s.file));
    return o;
  };
  Napi::Object o = Napi::Object::New(env);
  o.Set("cpu", pack(storage_stats(kCpu)));
  Napi::Array cuda = Napi::Array::New(env);
  for (int d = 0; d <= storage_max_device(); ++d) cuda.Set(uint32_t(d), pack(storage_stats(d)));
  o.Set("cuda", cuda);
  return o;
}

}  // namespace

void register_memory(Napi::Env env, Napi::Object exports) {
  exports.Set("alloc", Napi::Function::New(env, Alloc, "alloc"));
  exports.Set("free", Napi::Function::New(env, Free, "free"));
  exports.Set("mapFile", Napi::Function::New(env, MapFile, "mapFile"));
  exports.Set("adjustExternal", Napi::Function::New(env, AdjustExternal, "adjustExternal"));
  exports.Set("arrayBuffer", Napi::Function::New(env, ArrayBufferOf, "arrayBuffer"));
  exports.Set("write", Napi::Function::New(env, Write, "write"));
  exports.Set("read", Napi::Function::New(env, Read, "read"));
  exports.Set("args", Napi::Function::New(env, Args, "args"));
  exports.Set("fill", Napi::Function::New(env, Fill, "fill"));
  exports.Set("synchronize", Napi::Function::New(env, Synchronize, "synchronize"));
  exports.Set("emptyCache", Napi::Function::New(env, EmptyCache, "emptyCache"));
  exports.Set("memory", Napi::Function::New(env, Memory, "memory"));
  exports.Set("resetPeakMemory", Napi::Function::New(env, ResetPeakMemory, "resetPeakMemory"));
}

}  // namespace vlmoe

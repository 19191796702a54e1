// What every binding file shares: argument helpers, the device check of an op's operands,
// and the registration function of each domain (addon.cpp calls them all).
#pragma once
#include <napi.h>

#include <initializer_list>
#include <string>

#include "../args.h"
#include "../backend.h"
#include "../napi_errors.h"

namespace vlmoe {

inline int I(const Napi::CallbackInfo& info, size_t i) { return info[i].As<Napi::Number>().Int32Value(); }

// Every operand of one op on one device: `op` names the op in the error. Null (absent
// optional) operands are skipped.
inline void same_device(const char* op, int device, std::initializer_list<const Operand*> ops) {
  for (const Operand* o : ops)
    if (o && o->ptr && o->device != device) throw std::invalid_argument(std::string(op) + ": operands are on different devices");
}

// One registration per domain (bindings/<domain>.cpp).
void register_memory(Napi::Env env, Napi::Object exports);
void register_elementwise(Napi::Env env, Napi::Object exports);
void register_reduce(Napi::Env env, Napi::Object exports);
void register_nn(Napi::Env env, Napi::Object exports);
void register_moe(Napi::Env env, Napi::Object exports);
void register_gemm(Napi::Env env, Napi::Object exports);
void register_index(Napi::Env env, Napi::Object exports);
void register_random(Napi::Env env, Napi::Object exports);
void register_optim(Napi::Env env, Napi::Object exports);
void register_comm(Napi::Env env, Napi::Object exports);

}  // namespace vlmoe

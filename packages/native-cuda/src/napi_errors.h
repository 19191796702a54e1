// Turns C++ exceptions from kernels into JavaScript Errors carrying their message.
// Usage: `VLMOE_TRY ...body... VLMOE_CATCH(env)` around an N-API function body.
#pragma once
#include <napi.h>

#include <exception>

#define VLMOE_TRY try {
#define VLMOE_CATCH(env)                                     \
  }                                                          \
  catch (const Napi::Error&) { throw; }                      \
  catch (const std::exception& e) { throw Napi::Error::New(env, e.what()); }

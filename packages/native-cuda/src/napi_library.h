// A LibraryInfo (dynlib.h) as the JS object `{available, version, path, reason}`.
#pragma once
#include <napi.h>

#include "dynlib.h"

namespace vlmoe {

inline Napi::Object library_info_js(Napi::Env env, const LibraryInfo& l) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("available", l.available);
  o.Set("version", l.version);
  o.Set("path", l.path);
  o.Set("reason", l.reason);
  return o;
}

}  // namespace vlmoe

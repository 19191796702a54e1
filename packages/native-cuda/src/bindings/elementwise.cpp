// N-API bindings, Elementwise ops: unary, predicates, binary, comparisons, where, casts (the op codes exported as `ops`).
// Each reads and checks its operands from the argument block, then calls the backend of their
// device (backend.h).
#include <napi.h>

#include <stdexcept>
#include <string>

#include "common.h"
#include "../ops.h"
#include "../cpu/half_ops.h"

namespace vlmoe {
namespace {

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
        backend_for(device).half_cast(in, out, it);
        break;
      }
      OpParams p{r.f(), r.f()};
      if (op < 0 || op >= int(UnaryOp::kCount)) throw std::invalid_argument("unknown unary op");
      backend_for(device).unary(UnaryOp(op), in, out, it, p);
      break;
    }
    case 1: {
      DType ts[2] = {DType::b8, in};
      Iter it = r.iter(2, ts, &device);
      if (op < 0 || op >= int(PredOp::kCount)) throw std::invalid_argument("unknown predicate op");
      backend_for(device).pred(PredOp(op), in, it);
      break;
    }
    case 2: {
      DType ts[3] = {in, in, in};
      Iter it = r.iter(3, ts, &device);
      OpParams p{r.f(), r.f()};
      if (op < 0 || op >= int(BinaryOp::kCount)) throw std::invalid_argument("unknown binary op");
      backend_for(device).binary(BinaryOp(op), in, it, p);
      break;
    }
    case 3: {
      DType ts[3] = {DType::b8, in, in};
      Iter it = r.iter(3, ts, &device);
      if (op < 0 || op >= int(CmpOp::kCount)) throw std::invalid_argument("unknown compare op");
      backend_for(device).compare(CmpOp(op), in, it);
      break;
    }
    case 4: {
      DType ts[4] = {in, DType::b8, in, in};
      Iter it = r.iter(4, ts, &device);
      backend_for(device).where(in, it);
      break;
    }
    default: throw std::invalid_argument("unknown elementwise kind");
  }
  return env.Undefined();
  VLMOE_CATCH(env)
}

}  // namespace

void register_elementwise(Napi::Env env, Napi::Object exports) {
  exports.Set("ops", OpTable(env));
  exports.Set("ew", Napi::Function::New(env, Elementwise, "ew"));
}

}  // namespace vlmoe

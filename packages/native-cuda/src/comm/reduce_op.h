// Reduction operators of the communicators (the order matches @vlmoe/parallel's codes).
#pragma once

namespace vlmoe {
enum class ReduceOp : int { sum = 0, avg = 1, max = 2, min = 3 };
}  // namespace vlmoe

// MoE slot assignment: which (token, choice) keeps a slot in its expert's capacity buffer.
#pragma once
#include <cstdint>

namespace vlmoe {

// expert: [S·k] expert of choice j of token s at s·k + j (int64). Queue order per expert:
// choice rank, then token position (DeepSpeed's top-2 queues second choices after all
// first choices). policy 0: keep the first C of each queue; policy 1: keep the C with the
// highest priority (gate value for batch priority routing, uniform draws for RTS; ties →
// queue order). Kept assignments take slots 0..kept−1 in queue order; dropped get −1.
// countsBefore/countsAfter: [E] assignments per expert before/after dropping.
// Optional outputs (null: not wanted): countsFirst [E], first choices per expert before
// dropping (DeepSpeed's exp_counts for k ≤ 2); row [S·k], the assignment's row in the
// compact expert-contiguous buffer (offset of its expert, the exclusive prefix sum of
// countsAfter, plus its slot; −1 when dropped).
void moe_assign(int64_t S, int64_t k, int64_t E, int64_t C, int policy, const int64_t* expert, const double* priority,
                int64_t* slot, int64_t* countsBefore, int64_t* countsAfter, int64_t* countsFirst = nullptr, int64_t* row = nullptr);

}  // namespace vlmoe

#include "moe_assign.h"

#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

namespace vlmoe {

namespace {

void assign_slots(int64_t S, int64_t k, int64_t E, int64_t C, int policy, const int64_t* expert, const double* priority,
                  int64_t* slot, int64_t* countsBefore, int64_t* countsAfter);

}  // namespace

void moe_assign(int64_t S, int64_t k, int64_t E, int64_t C, int policy, const int64_t* expert, const double* priority,
                int64_t* slot, int64_t* countsBefore, int64_t* countsAfter, int64_t* countsFirst, int64_t* row) {
  assign_slots(S, k, E, C, policy, expert, priority, slot, countsBefore, countsAfter);
  if (countsFirst) {
    std::fill(countsFirst, countsFirst + E, 0);
    for (int64_t s = 0; s < S; ++s) ++countsFirst[expert[s * k]];
  }
  if (row) {
    std::vector<int64_t> offset(E, 0);
    for (int64_t e = 1; e < E; ++e) offset[e] = offset[e - 1] + countsAfter[e - 1];
    for (int64_t a = 0; a < S * k; ++a) row[a] = slot[a] < 0 ? -1 : offset[expert[a]] + slot[a];
  }
}

namespace {

void assign_slots(int64_t S, int64_t k, int64_t E, int64_t C, int policy, const int64_t* expert, const double* priority,
                  int64_t* slot, int64_t* countsBefore, int64_t* countsAfter) {
  const int64_t n = S * k;
  std::fill(countsBefore, countsBefore + E, 0);
  for (int64_t a = 0; a < n; ++a) {
    const int64_t e = expert[a];
    if (e < 0 || e >= E) throw std::out_of_range("moe_assign: expert index " + std::to_string(e) + " at assignment " + std::to_string(a) + " is outside [0, " + std::to_string(E) + ")");
    ++countsBefore[e];
  }
  if (policy == 0 || priority == nullptr) {
    // first C of each queue: one pass in queue order
    std::vector<int64_t> fill(E, 0);
    for (int64_t j = 0; j < k; ++j) {
      for (int64_t s = 0; s < S; ++s) {
        const int64_t a = s * k + j;
        const int64_t pos = fill[expert[a]]++;
        slot[a] = pos < C ? pos : -1;
      }
    }
    for (int64_t e = 0; e < E; ++e) countsAfter[e] = std::min(countsBefore[e], C);
    return;
  }
  // bucket the assignments by expert in queue order (counting sort)
  std::vector<int64_t> start(E + 1, 0);
  for (int64_t e = 0; e < E; ++e) start[e + 1] = start[e] + countsBefore[e];
  std::vector<int64_t> queue(n), fill(start.begin(), start.end() - 1);
  for (int64_t j = 0; j < k; ++j)
    for (int64_t s = 0; s < S; ++s) queue[fill[expert[s * k + j]]++] = s * k + j;
  std::vector<int64_t> order;
  std::vector<char> kept;
  for (int64_t e = 0; e < E; ++e) {
    const int64_t b = start[e], cnt = countsBefore[e];
    if (cnt <= C) {
      for (int64_t q = 0; q < cnt; ++q) slot[queue[b + q]] = q;
      countsAfter[e] = cnt;
      continue;
    }
    // keep the C highest priorities (ties: earlier in the queue)
    order.resize(cnt);
    for (int64_t q = 0; q < cnt; ++q) order[q] = q;
    auto better = [&](int64_t x, int64_t y) {
      const double px = priority[queue[b + x]], py = priority[queue[b + y]];
      return px > py || (px == py && x < y);
    };
    std::nth_element(order.begin(), order.begin() + C, order.end(), better);
    kept.assign(cnt, 0);
    for (int64_t q = 0; q < C; ++q) kept[order[q]] = 1;
    int64_t next = 0;
    for (int64_t q = 0; q < cnt; ++q) slot[queue[b + q]] = kept[q] ? next++ : -1;
    countsAfter[e] = next;
  }
}

}  // namespace
}  // namespace vlmoe

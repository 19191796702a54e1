/**
 * A running count of the floating-point operations done by the matrix-multiply kernels — GEMM
 * (matmul, linear, conv through GEMM), the grouped and fused expert GEMMs of MoE layers, and
 * fused attention — forward and backward, 2 per multiply-add, as PyTorch's
 * `torch.utils.flop_counter.FlopCounterMode` counts them (elementwise ops, softmax and norms are
 * not counted; attention counts the full Lq × Lk scores, masked or not; its backward counts the
 * four gradient products, not the recomputed scores). Every kernel call adds its count before
 * it runs, on any device, so the count is what was asked of the hardware: read it before and
 * after a step for the step's training FLOPs.
 */
let total = 0;

/** Adds a kernel's operations to the count (the backend's kernel wrappers call it). */
export function countFlops(n: number): void {
  total += n;
}

/** Floating-point operations of matrix-multiply kernels run by this process so far (see flops.ts). */
export function flopCount(): number {
  return total;
}

/**
 * The CUDA backend: the kernels the addon implements on CUDA (packages/native-cuda/src/cuda):
 * memory, copies, fills, random numbers and dropout (the CPU's Philox streams), every
 * elementwise op, GEMM (cuBLAS or our own kernel), reductions and cumsum, softmax and layer
 * norm (fused, with backward), top-k, indexing (index_select / index_add / gather /
 * scatter_add), the fused optimisers, and the MoE kernels (slot assignment, permute /
 * unpermute, grouped GEMMs, the fused expert FFN). Every kernel entry point dispatches on its
 * operands' device natively, so the table is the CPU's.
 */
import * as k from './kernels.js';
import { registerBackend } from './registry.js';

registerBackend('cuda', k);

/**
 * The CUDA backend: the kernels the addon implements on CUDA (packages/native-cuda/src/cuda):
 * memory, copies, fills, random numbers and dropout (the CPU's Philox streams), every
 * elementwise op, GEMM (cuBLAS or our own kernel), reductions and cumsum, softmax and layer
 * norm (fused, with backward), top-k, indexing (index_select / index_add / gather /
 * scatter_add). The rest — the MoE kernels, the grouped GEMMs — raise "not implemented on
 * cuda" until written.
 */
import * as k from './kernels.js';
import { missing, registerBackend, type Kernels } from './registry.js';

const implemented = new Set(['unary', 'pred', 'binary', 'compare', 'where', 'fill', 'random', 'gemm', 'reduce', 'cumsum', 'softmax', 'softmaxBackward', 'layerNorm', 'layerNormBackward', 'indexSelect', 'indexAdd', 'gather', 'scatterAdd', 'dropout', 'topk', 'OPS']);
const table = {} as Record<string, unknown>;
for (const [name, fn] of Object.entries(k)) {
  table[name] = implemented.has(name) ? fn : () => missing(name, 'cuda');
}
registerBackend('cuda', table as unknown as Kernels);

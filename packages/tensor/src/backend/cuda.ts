/**
 * The CUDA backend: the kernels the addon implements on CUDA so far — memory, copies,
 * fill, random fills and every elementwise op. The rest raise "not implemented on cuda"
 * (the full CUDA kernel set is its own issue).
 */
import * as k from './kernels.js';
import { missing, registerBackend, type Kernels } from './registry.js';

const implemented = new Set(['unary', 'pred', 'binary', 'compare', 'where', 'fill', 'random', 'gemm', 'reduce', 'cumsum', 'softmax', 'softmaxBackward', 'layerNorm', 'layerNormBackward', 'OPS']);
const table = {} as Record<string, unknown>;
for (const [name, fn] of Object.entries(k)) {
  table[name] = implemented.has(name) ? fn : () => missing(name, 'cuda');
}
registerBackend('cuda', table as unknown as Kernels);

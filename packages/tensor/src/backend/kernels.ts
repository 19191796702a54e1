/**
 * The kernel entry points over tensors, by domain (one file each). Each writes the argument
 * block and makes one native call; the addon checks every view against its storage's size
 * and runs the kernel of the operands' device (its backend table, native-cuda's backend.h), so
 * there is no per-device table here.
 */
export * from './elementwise.js';
export * from './random.js';
export * from './reduce.js';
export * from './nn.js';
export * from './moe.js';
export * from './gemm.js';
export * from './indexing.js';

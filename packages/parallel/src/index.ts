/**
 * @vlmoe/parallel — torch.distributed-style process groups for vlmoe (the shm backend today),
 * and the `vlmoe-run` launcher. The training engine (data/expert parallel, ZeRO) follows.
 */
export { type ProcessGroup, type ReduceOp, type Work, type AsyncOption, CompletedWork } from './process_group.js';
export { ShmProcessGroup, NativeProcessGroup, type ShmOptions } from './shm.js';
export { MpiProcessGroup, mpiAvailable } from './mpi.js';
export { initProcessGroup, resolveInit, ncclInfo, type InitOptions, type Backend } from './init.js';
export { ExpertParallelGroup, allToAllRows, type ExpertDispatchResult } from './expert_parallel.js';
export { initialize, DistributedEngine, type Engine, type EngineOptions, type InitializeResult } from './engine.js';
export { resolveConfig, type DeepSpeedConfig, type ResolvedConfig } from './config.js';
export { createParallelGroups, type ParallelGroups } from './groups.js';

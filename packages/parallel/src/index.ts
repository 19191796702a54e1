/**
 * @vlmoe/parallel — torch.distributed-style process groups for vlmoe (shm and mpi backends; nccl discovered),
 * and the `vlmoe-run` launcher; the training engine (data and expert parallel, ZeRO 1/2, checkpoints); tensor-parallel layers (Megatron's column/row split).
 */
export { type ProcessGroup, type ReduceOp, type Work, type AsyncOption, CompletedWork } from './process_group.js';
export { ShmProcessGroup, type ShmOptions } from './shm.js';
export { NativeProcessGroup, NativeWork } from './native_process_group.js';
export type { ShmTransferStats } from '@vlmoe/native-cuda';
export { MpiProcessGroup, mpiAvailable } from './mpi.js';
export { NcclProcessGroup } from './nccl.js';
export { initProcessGroup, resolveInit, ncclInfo, type InitOptions, type Backend } from './init.js';
export { ExpertParallelGroup, allToAllRows, type ExpertDispatchResult } from './expert_parallel.js';
export { allGatherRows } from './gather.js';
export { initialize, DistributedEngine, type Engine, type EngineOptions, type InitializeResult } from './engine.js';
export { loadCheckpointWeights, saveCheckpointWeights, type TrainingState, type CheckpointLayout } from './checkpoint.js';
export { ZeroOptimizer, type ParamGroup, type ZeroOptions, type GlobalState } from './zero.js';
export { ParameterCoordinator, isZero3Leaf, setZero3LeafModules } from './zero3.js';
export { zeroInit } from './zero_init.js';
export { resolveConfig, DEEPSPEED_CONFIG_SCHEMA, type DeepSpeedConfig, type ResolvedConfig } from './config.js';
export { LossScaler, type LossScalerOptions, type LossScalerState } from './loss_scaler.js';
export { createParallelGroups, describeParallelGroups, type ParallelGroups, type ParallelSizes } from './groups.js';
export * from './tensor_parallel/index.js';
export { wireModel, isExpertParallelLayer, isDataParallelModule, isOptimizerStepModule, type ExpertParallelLayer, type DataParallelModule, type OptimizerStepModule } from './wiring.js';

/**
 * @vlmoe/cli as a library: the training recipes behind `vlmoe pretrain | finetune | eval |
 * bench`, and the trainer they share (run folder, metrics, checkpoints, --resume, progress),
 * for programs that train without the command line (tools/examples does).
 */
export { pretrain, pretrainValidationLoss, PRETRAIN_SCHEMA, type PretrainConfig } from './recipes/pretrain.js';
export { finetune, FINETUNE_SCHEMA, type FinetuneConfig } from './recipes/finetune.js';
export { evaluateRun, loadFinetuned } from './recipes/evaluate.js';
export { bench, DEFAULT_BENCH, type BenchConfig, type BenchModel } from './recipes/bench.js';
export { train, engineConfig, modelConfig, describeModel, COMMON_SHAPE, MODEL_SHAPE, type TrainSpec, type TrainResult, type CommonConfig, type ModelKeys, type StepOutput, type RecipeRunOptions } from './recipes/trainer.js';
export { BENCH_SCHEMA, STUDY_SCHEMA, SEARCH_SCHEMA, jsonSchemas, type StudyConfig, type SearchConfig } from './recipes/schemas.js';
export { importCheckpoint, exportCheckpoint, type ImportOptions, type CheckpointFormat } from './interop.js';
export { study, type StudyResult, type Claim } from './recipes/study.js';
export { type BenchResult } from './recipes/bench.js';

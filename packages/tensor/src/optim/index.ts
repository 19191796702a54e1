/** Optimisers, gradient clipping and LR schedules: `import { optim } from '@vlmoe/tensor'`. */
export {
  Optimizer,
  type BaseHyper,
  type ParamGroup,
  type ParamGroupInput,
  type ParamsInput,
  type ParamState,
  type OptimizerStateDict,
} from './optimizer.js';
export { Adam, AdamBase, type AdamOptions } from './adam.js';
export { AdamW, type AdamWOptions } from './adamw.js';
export { SGD, type SGDOptions } from './sgd.js';
export { clipGradNorm, totalNorm, type ClipGradNormOptions } from './clip_grad.js';
export {
  LRScheduler,
  LambdaLR,
  WarmupDecayLR,
  warmupDecay,
  type LrLambda,
  type SchedulerStateDict,
  type WarmupDecayOptions,
} from './lr_scheduler.js';

/** torch.nn-style modules: `import { nn } from '@vlmoe/tensor'`. */
export { Module, type LoadResult } from './module.js';
export { Parameter, parameterFrom, emptyParameter, type ParamTags } from './parameter.js';
export { deferredInit, isDeferred, materializeRange, deferredFingerprint, type InitRecipe } from '../deferred.js';
export { Linear, LayerNorm, Embedding, Dropout, GELU, Identity, LayerScale, DropPath, type DeviceOptions, type SampleIndex } from './layers.js';
export { Sequential, ModuleList, ModuleDict } from './containers.js';
export { Conv2d, PatchEmbedding } from './conv.js';
export { MultiheadSelfAttention, type AttentionOptions } from './attention.js';
export { FeedForward } from './feedforward.js';
export { CrossEntropyLoss, BCEWithLogitsLoss, MSELoss, mseLoss } from './loss.js';
export * as init from './init.js';

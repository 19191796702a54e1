export { DataLoader, type DataLoaderOptions, type DataLoaderState, type Batch, type TextTokenizer } from './dataloader.js';
export { DistributedSampler, type SamplerOptions } from './sampler.js';
export { BatchCache } from './batch_cache.js';

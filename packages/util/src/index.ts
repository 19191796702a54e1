/**
 * @vlmoe/util: the helpers every vlmoe package shares, with no dependencies beyond Node —
 * so that @vlmoe/data (which stands alone) and @vlmoe/tensor (and all above it) use one
 * implementation of each.
 */
export { writeFileAtomicSync, writeFileAtomic, tempPathFor, type ChunkWriter, type AsyncChunkWriter, type FileContent } from './atomic.js';
export { readJsonFile } from './json_file.js';
export { editDistance, nearestKey, didYouMean } from './did_you_mean.js';
export { crc32, crc32Reference } from './crc32.js';

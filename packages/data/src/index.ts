/**
 * @vlmoe/data — multimodal data for vision-language models, typed arrays out.
 *
 * Arrow files in the ViLT/VLMo layouts, converters from the datasets' own layouts, image
 * decoding and augmentation in worker threads, a WordPiece tokenizer, MLM masking, a
 * resumable sharded DataLoader and a synthetic shapes-world dataset. No tensor dependency.
 */
export * from './arrow/schemas.js';
export { ArrowReader, BatchView, type ArrowReaderOptions, type ArrowFormat } from './arrow/reader.js';
export { ArrowWriter, SchemaWriter, writeArrowFile, type ArrowWriterOptions } from './arrow/writer.js';
export { rewriteAsArrowFile, type RewriteReport } from './arrow/rewrite.js';
export { groupSplit, heldOutGroups, type GroupSplitOptions, type GroupSplitReport } from './arrow/group_split.js';
export { parquetToArrowFile, isParquetFile, type ParquetConvertReport } from './arrow/parquet.js';
export * from './converters/index.js';
export * from './image/index.js';
export * from './text/index.js';
export * from './loader/index.js';
export * from './synthetic/index.js';
export { ensureDefaultDataset, type DefaultDataset, type DefaultDatasetOptions } from './default_dataset.js';
export { AnswerVocab, softScore } from './vqa/answers.js';
export { normalizeAnswer, cleanAnswerWhitespace, processPunctuation, processDigitArticle } from './vqa/normalize.js';
export { PYTHON_WHITESPACE, isPythonSpace, pythonStrip, pythonSplit } from './vqa/whitespace.js';
export { Rng, mixSeed } from './rng.js';
export { Progress } from './progress.js';
export { parseCommand, intOption, choiceOption, UsageError, type CliIO, type CommandSpec, type OptionSpec, type OptionValues, type Parsed, type UsageFail } from './cli/command_line.js';

/**
 * `vlmoe-data convert`: a dataset in its own layout → a ViLT/VLMo Arrow file; or, with
 * `--to-file`, an Arrow IPC stream (a Hugging Face `datasets` cache file, say) or a Parquet file
 * (`Dataset.to_parquet`, the Hub's Parquet exports) → an IPC file.
 */
import { dirname, join } from 'node:path';
import {
  convertCocoCaptions,
  convertEasyVqa,
  convertFlickr,
  convertKarpathy,
  convertNlvr1,
  convertNlvr2,
  convertVqa2,
  type ConvertOptions,
  type ConvertReport,
} from '../converters/index.js';
import { existsSync, statSync } from 'node:fs';
import { isParquetFile, parquetToArrowFile } from '../arrow/parquet.js';
import { rewriteAsArrowFile } from '../arrow/rewrite.js';
import { didYouMean } from '@vlmoe/util';
import { choiceOption, intOption, parseCommand, type CliIO, type UsageFail } from './command_line.js';

export const CONVERT_USAGE = `usage: vlmoe-data convert <kind> <input> <out.arrow> [options]
       vlmoe-data convert --to-file <in.arrow|in.parquet> <out.arrow>

kinds and their options:
  coco      <captions_*.json>         --images DIR (the image folder) [--split NAME]
  karpathy  <dataset_coco.json>       --split train|val|test [--images ROOT (default: the JSON's folder)]
  flickr    <Flickr8k.token.txt>      [--images DIR (default: Images/ beside it)] [--split-list FILE] [--split NAME]
  vqav2     <questions.json>          --images DIR [--annotations FILE] [--answers answers.json | --vocab-from A,B
                                      [--min-answer-count N (default 9)]] [--split NAME]
  easy-vqa  <questions.json>          [--images DIR (default: images/ beside it)]
                                      [--answers answers.txt (default: ../answers.txt)] [--split NAME]
  nlvr1     <split.json>              [--images DIR (default: images/ beside it)] [--permutations 0,1] [--split NAME]
  nlvr2     <split.json>              --images DIR

common options:
  --on-error throw|skip   a missing or undecodable image stops the conversion (throw, default) or
                          is left out and listed in the report (skip)
  --no-verify             only read each image's header (format, size) instead of decoding it fully
  --format file|stream    Arrow IPC file (default; what the DataLoader reads) or stream
  --batch-rows N          rows per record batch (default 256)

--to-file rewrites an Arrow IPC stream (e.g. a Hugging Face datasets cache file,
data-00000-of-00001.arrow) as an IPC file, which the DataLoader needs, or converts a Parquet file
written by datasets (to_parquet, the Hub's Parquet exports; columns with our names, images as
datasets' struct<bytes, path>) into our Arrow file of its kind; no other option applies.
An option that does not apply to the kind is an error.
`;

const OPTIONS = {
  images: { type: 'string' },
  split: { type: 'string' },
  'split-list': { type: 'string' },
  annotations: { type: 'string' },
  answers: { type: 'string' },
  'vocab-from': { type: 'string' },
  'min-answer-count': { type: 'string' },
  permutations: { type: 'string' },
  'on-error': { type: 'string' },
  format: { type: 'string' },
  'batch-rows': { type: 'string' },
  'no-verify': { type: 'boolean' },
  'to-file': { type: 'boolean' },
} as const;
type Option = keyof typeof OPTIONS;

const COMMON: readonly Option[] = ['on-error', 'no-verify', 'format', 'batch-rows'];

/** The options each kind takes (besides the common ones). */
const KIND_OPTIONS = {
  coco: ['images', 'split'],
  karpathy: ['images', 'split'],
  flickr: ['images', 'split-list', 'split'],
  vqav2: ['images', 'annotations', 'answers', 'vocab-from', 'min-answer-count', 'split'],
  'easy-vqa': ['images', 'answers', 'split'],
  nlvr1: ['images', 'permutations', 'split'],
  nlvr2: ['images'],
} as const satisfies Record<string, readonly Option[]>;
type Kind = keyof typeof KIND_OPTIONS;
const KINDS = Object.keys(KIND_OPTIONS) as Kind[];

const list = (opts: readonly string[]) => opts.map((o) => `--${o}`).join(', ');

export async function convertCommand(argv: string[], io: CliIO): Promise<void> {
  const a = parseCommand(argv, { name: 'convert', usage: CONVERT_USAGE, options: OPTIONS, positionals: { min: 0, max: 3, what: '<kind> <input> <out.arrow> (or --to-file <in.arrow> <out.arrow>)' } }, io);
  if (!a) return;
  const { values: v, positionals, usage: fail } = a;
  const given = (Object.keys(v) as Option[]).filter((k) => v[k] !== undefined && k in OPTIONS);

  if (v['to-file']) {
    const other = given.filter((k) => k !== 'to-file');
    if (other.length > 0) fail(`--${other[0]} does not apply to --to-file (it takes no other option)`);
    if (positionals.length !== 2) fail(`--to-file takes <in.arrow|in.parquet> <out.arrow>, got ${positionals.length} argument(s)`);
    if (existsSync(positionals[0]!) && statSync(positionals[0]!).isFile() && isParquetFile(positionals[0]!)) {
      const p = await parquetToArrowFile(positionals[0]!, positionals[1]!);
      io.out(`${p.out}: Arrow IPC file (${p.kind}), ${p.rows} rows from ${p.rowGroups} Parquet row group(s)\n`);
      return;
    }
    const r = await rewriteAsArrowFile(positionals[0]!, positionals[1]!);
    io.out(`${r.out}: Arrow IPC file, ${r.rows} rows in ${r.batches} record batches (from an IPC ${r.from})\n`);
    return;
  }

  if (positionals.length !== 3) fail('needs <kind> <input> <out.arrow>');
  const [kindArg, input, out] = positionals as [string, string, string];
  if (!(KINDS as string[]).includes(kindArg)) fail(`unknown dataset kind '${kindArg}' (kinds: ${KINDS.join(', ')})${didYouMean(kindArg, KINDS)}`);
  const kind = kindArg as Kind;
  const allowed: readonly Option[] = [...KIND_OPTIONS[kind], ...COMMON];
  for (const k of given) {
    if (!allowed.includes(k)) fail(`--${k} does not apply to ${kind} (${kind} takes ${list(KIND_OPTIONS[kind])}; every kind takes ${list(COMMON)})`);
  }

  const opts: ConvertOptions = {
    onError: choiceOption(v['on-error'], 'on-error', fail, ['throw', 'skip'] as const),
    format: choiceOption(v.format, 'format', fail, ['file', 'stream'] as const),
    batchRows: intOption(v['batch-rows'], 'batch-rows', fail, 1),
    verifyImages: v['no-verify'] ? 'header' : 'decode',
  };
  const need = (value: string | undefined, flag: Option): string => value ?? fail(`${kind} needs --${flag}`);
  const images = v.images;
  let report: ConvertReport;
  switch (kind) {
    case 'coco':
      report = await convertCocoCaptions({ annotations: input, imageDir: need(images, 'images'), split: v.split }, out, opts);
      break;
    case 'karpathy':
      report = await convertKarpathy({ json: input, imageRoot: images, split: need(v.split, 'split') }, out, opts);
      break;
    case 'flickr':
      report = await convertFlickr({ tokens: input, imageDir: images ?? join(dirname(input), 'Images'), splitList: v['split-list'], split: v.split }, out, opts);
      break;
    case 'vqav2': {
      if (v.answers !== undefined && v['vocab-from'] !== undefined) fail('--answers (a saved vocabulary) and --vocab-from (build one) exclude each other');
      if (v['min-answer-count'] !== undefined && v.answers !== undefined) fail('--min-answer-count does not apply with --answers (the vocabulary is given)');
      const vocabFrom = v['vocab-from']?.split(',');
      if (vocabFrom?.some((f) => f === '')) fail(`--vocab-from takes comma-separated file names, got '${v['vocab-from']}'`);
      report = await convertVqa2(
        {
          questions: input,
          annotations: v.annotations,
          imageDir: need(images, 'images'),
          answerVocab: v.answers,
          vocabFrom,
          minAnswerCount: intOption(v['min-answer-count'], 'min-answer-count', fail, 1),
          split: v.split,
        },
        out,
        opts,
      );
      break;
    }
    case 'easy-vqa':
      report = await convertEasyVqa(
        { questions: input, imageDir: images ?? join(dirname(input), 'images'), answers: v.answers ?? join(dirname(input), '..', 'answers.txt'), split: v.split },
        out,
        opts,
      );
      break;
    case 'nlvr1': {
      let permutations: [number, number] | undefined;
      if (v.permutations !== undefined) {
        const parts = v.permutations.split(',');
        if (parts.length !== 2) fail(`--permutations takes two of 0..5 separated by a comma (e.g. 0,1), got '${v.permutations}'`);
        permutations = parts.map((p) => intOption(p, 'permutations', fail, 0, 5)!) as [number, number];
      }
      report = await convertNlvr1({ json: input, imageDir: images ?? join(dirname(input), 'images'), split: v.split, permutations }, out, opts);
      break;
    }
    case 'nlvr2':
      report = await convertNlvr2({ json: input, imageDir: need(images, 'images') }, out, opts);
      break;
  }
  printReport(report, io);
}

/** The report on stdout: counts, sidecars, and every skipped image with its reason. */
function printReport(r: ConvertReport, io: CliIO): void {
  io.out(`${r.out}: ${r.rows} rows, ${r.images} images, ${r.texts} texts\n`);
  for (const s of r.sidecars) io.out(`  + ${s}\n`);
  if (r.skipped.length) {
    io.out(`  skipped ${r.skipped.length} image(s):\n`);
    for (const s of r.skipped) io.out(`    ${s.source}: ${s.reason} (${s.where})\n`);
  }
}

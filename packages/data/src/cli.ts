#!/usr/bin/env node
/**
 * `vlmoe-data`: convert datasets to ViLT/VLMo Arrow files, inspect them, generate the
 * synthetic shapes world, and build a WordPiece tokenizer from a corpus.
 */
import { parseArgs } from 'node:util';
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
} from './converters/index.js';
import { ArrowReader } from './arrow/reader.js';
import { describeType } from './arrow/schemas.js';
import { ensureDefaultDataset } from './default_dataset.js';
import { buildWordPieceTokenizer, saveTokenizer } from './text/index.js';

const USAGE = `usage: vlmoe-data <command> [options]

commands:
  convert <kind> <input> <out.arrow>   convert a dataset in its own layout (kinds: coco, karpathy,
                                       flickr, vqav2, easy-vqa, nlvr1, nlvr2); 'convert --help' for details
  inspect <file.arrow>...              schema, kind, rows, batches and the first rows of Arrow files
  synth <out-dir>                      generate the synthetic shapes-world dataset ('synth --help')
  tokenizer <out.json> <file.arrow>... build a WordPiece tokenizer.json from the texts of Arrow files
`;

const CONVERT_USAGE = `usage: vlmoe-data convert <kind> <input> <out.arrow> [options]

  coco      <captions_*.json>         --images DIR (the image folder) [--split NAME]
  karpathy  <dataset_coco.json>       --split train|val|test [--images ROOT (default: the JSON's folder)]
  flickr    <Flickr8k.token.txt>      [--images DIR (default: Images/ beside it)] [--split-list FILE] [--split NAME]
  vqav2     <questions.json>          --images DIR [--annotations FILE] [--answers answers.json | --vocab-from A,B]
                                      [--min-answer-count 9] [--split NAME]
  easy-vqa  <questions.json>          [--images DIR (default: images/ beside it)] [--answers answers.txt (default: ../answers.txt)]
  nlvr1     <split.json>              [--images DIR (default: images/ beside it)] [--permutations 0,1] [--split NAME]
  nlvr2     <split.json>              --images DIR

common: --on-error throw|skip (a missing/corrupt image), --format file|stream, --batch-rows N, --no-verify
`;

const SYNTH_USAGE = `usage: vlmoe-data synth <out-dir> [--seed N] [--train N] [--val N] [--test N] [--image-size N]
Writes captions_/vqa_/nlvr2_{train,val,test}.arrow, answers.json, tokenizer.json and manifest.json;\nskips the work when the folder already holds the same dataset.`;

function fail(msg: string): never {
  process.stderr.write(`vlmoe-data: ${msg}\n`);
  process.exit(2);
}

function num(v: string | undefined, name: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) fail(`--${name} must be a number, got '${v}'`);
  return n;
}

function printReport(r: ConvertReport): void {
  console.log(`${r.out}: ${r.rows} rows, ${r.images} images, ${r.texts} texts`);
  for (const s of r.sidecars) console.log(`  + ${s}`);
  if (r.skipped.length) {
    console.log(`  skipped ${r.skipped.length} image(s):`);
    for (const s of r.skipped.slice(0, 10)) console.log(`    ${s.reason}`);
    if (r.skipped.length > 10) console.log(`    … and ${r.skipped.length - 10} more`);
  }
}

async function convert(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
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
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return void console.log(CONVERT_USAGE);
  const [kind, input, out] = positionals;
  if (!kind || !input || !out) fail(`convert needs <kind> <input> <out.arrow>\n\n${CONVERT_USAGE}`);
  const onError = values['on-error'];
  if (onError !== undefined && onError !== 'throw' && onError !== 'skip') fail(`--on-error must be throw or skip, got '${onError}'`);
  const format = values.format;
  if (format !== undefined && format !== 'file' && format !== 'stream') fail(`--format must be file or stream, got '${format}'`);
  const opts: ConvertOptions = { onError, format, batchRows: num(values['batch-rows'], 'batch-rows'), verifyImages: !values['no-verify'] };
  const need = (v: string | undefined, flag: string): string => v ?? fail(`convert ${kind} needs --${flag}`);
  let report: ConvertReport;
  switch (kind) {
    case 'coco':
      report = await convertCocoCaptions({ annotations: input, imageDir: need(values.images, 'images'), split: values.split }, out, opts);
      break;
    case 'karpathy':
      report = await convertKarpathy({ json: input, imageRoot: values.images, split: need(values.split, 'split') }, out, opts);
      break;
    case 'flickr':
      report = await convertFlickr({ tokens: input, imageDir: values.images ?? join(dirname(input), 'Images'), splitList: values['split-list'], split: values.split }, out, opts);
      break;
    case 'vqav2':
      report = await convertVqa2(
        {
          questions: input,
          annotations: values.annotations,
          imageDir: need(values.images, 'images'),
          answerVocab: values.answers,
          vocabFrom: values['vocab-from']?.split(','),
          minAnswerCount: num(values['min-answer-count'], 'min-answer-count'),
          split: values.split,
        },
        out,
        opts,
      );
      break;
    case 'easy-vqa':
      report = await convertEasyVqa(
        { questions: input, imageDir: values.images ?? join(dirname(input), 'images'), answers: values.answers ?? join(dirname(input), '..', 'answers.txt'), split: values.split },
        out,
        opts,
      );
      break;
    case 'nlvr1': {
      const perms = values.permutations?.split(',').map((x) => num(x, 'permutations')!);
      if (perms && perms.length !== 2) fail('--permutations takes two numbers, e.g. 0,1');
      report = await convertNlvr1({ json: input, imageDir: values.images ?? join(dirname(input), 'images'), split: values.split, permutations: perms as [number, number] | undefined }, out, opts);
      break;
    }
    case 'nlvr2':
      report = await convertNlvr2({ json: input, imageDir: need(values.images, 'images') }, out, opts);
      break;
    default:
      fail(`unknown dataset kind '${kind}'\n\n${CONVERT_USAGE}`);
  }
  printReport(report);
}

function summarise(v: unknown): string {
  if (v instanceof Uint8Array) return `<${v.byteLength} bytes>`;
  if (Array.isArray(v)) return `[${v.slice(0, 3).map(summarise).join(', ')}${v.length > 3 ? `, … ${v.length} in all` : ''}]`;
  if (typeof v === 'string') return JSON.stringify(v.length > 60 ? v.slice(0, 57) + '...' : v);
  return String(v);
}

async function inspect(files: string[]): Promise<void> {
  if (files.length === 0) fail('inspect needs at least one Arrow file');
  for (const f of files) {
    const r = await ArrowReader.open(f);
    let rows = r.numRows;
    let batches = r.numBatches;
    const first: string[] = [];
    for await (const b of r.batches()) {
      for (let i = 0; i < b.numRows && first.length < 2; i++) {
        first.push(Object.entries(b.row(i) as object).map(([k, v]) => `    ${k}: ${summarise(v)}`).join('\n'));
      }
      if (r.format === 'file') break;
    }
    rows = r.numRows;
    batches = r.numBatches;
    console.log(`${f}\n  format: IPC ${r.format}, kind: ${r.kind ?? 'unknown'}, rows: ${rows}, record batches: ${batches}`);
    console.log(`  schema: ${r.schema.fields.map((x) => `${x.name}: ${describeType(x.type)}`).join(', ')}`);
    first.forEach((s, i) => console.log(`  row ${i}:\n${s}`));
    await r.close();
  }
}

async function synth(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      seed: { type: 'string' },
      train: { type: 'string' },
      val: { type: 'string' },
      test: { type: 'string' },
      'image-size': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return void console.log(SYNTH_USAGE);
  const out = positionals[0] ?? fail(`synth needs <out-dir>\n\n${SYNTH_USAGE}`);
  const splits = values.train || values.val || values.test
    ? { train: num(values.train, 'train') ?? 2000, val: num(values.val, 'val') ?? 250, test: num(values.test, 'test') ?? 250 }
    : undefined;
  const ds = await ensureDefaultDataset(out, { seed: num(values.seed, 'seed'), imageSize: num(values['image-size'], 'image-size'), splits });
  const c = ds.manifest.counts;
  console.log(`${out}: ${ds.generated ? 'generated' : 'already up to date'}: ${c.images} images; captions rows ${JSON.stringify(c.captions)}, questions ${JSON.stringify(c.questions)}, NLVR pairs ${JSON.stringify(c.nlvr2)}, ${c.answers} answers; tokenizer ${ds.tokenizer}`);
}

async function tokenizer(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { 'vocab-size': { type: 'string' }, 'min-frequency': { type: 'string' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help || positionals.length < 2) {
    console.log('usage: vlmoe-data tokenizer <out tokenizer.json> <file.arrow>... [--vocab-size 30522] [--min-frequency 2]');
    if (!values.help) process.exit(2);
    return;
  }
  const [out, ...files] = positionals as [string, ...string[]];
  const texts: string[] = [];
  for (const f of files) {
    const r = await ArrowReader.open(f);
    const col = r.kind === 'captions' ? 'caption' : 'questions';
    for await (const b of r.batches()) for (let i = 0; i < b.numRows; i++) texts.push(...(b.value(col, i) as string[]));
    await r.close();
  }
  const json = buildWordPieceTokenizer(texts, { vocabSize: num(values['vocab-size'], 'vocab-size'), minFrequency: num(values['min-frequency'], 'min-frequency') });
  saveTokenizer(out, json);
  const vocab = (json as { model?: { vocab?: Record<string, number> } }).model?.vocab ?? {};
  console.log(`${out}: WordPiece vocabulary of ${Object.keys(vocab).length} tokens from ${texts.length} texts`);
}

async function main(argv: string[]): Promise<void> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case 'convert':
      return convert(rest);
    case 'inspect':
      return inspect(rest.filter((a) => !a.startsWith('-')));
    case 'synth':
      return synth(rest);
    case 'tokenizer':
      return tokenizer(rest);
    case undefined:
    case '--help':
    case '-h':
    case 'help':
      console.log(USAGE);
      if (cmd === undefined) process.exit(2);
      return;
    default:
      fail(`unknown command '${cmd}'\n\n${USAGE}`);
  }
}

main(process.argv.slice(2)).catch((e: Error) => fail(e.message));

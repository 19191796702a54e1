import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { runCli } from '../src/cli/main.js';
import { writeArrowFile } from '../src/arrow/writer.js';
import type { CaptionRow } from '../src/arrow/schemas.js';
import { SHARED_DATA, tempDir } from './helpers.js';

process.env.VLMOE_PROGRESS = '0';
const here = dirname(fileURLToPath(import.meta.url));
const VERSION = (JSON.parse(readFileSync(join(here, '../package.json'), 'utf8')) as { version: string }).version;
const tmp = tempDir();
afterAll(() => tmp.cleanup());

/** Runs `vlmoe-data` in this process (from the sources) and collects what it prints. */
async function cli(...args: string[]) {
  let out = '';
  let err = '';
  const code = await runCli(args, { out: (t) => void (out += t), err: (t) => void (err += t) });
  return { code, out, err };
}

/** A usage error: one line naming the mistake, a blank line, then the command's usage; nothing on stdout. */
function expectUsageError(r: { code: number; out: string; err: string }, command: string, line: RegExp): void {
  expect(r.code, r.err).toBe(2);
  expect(r.out).toBe('');
  const [first, blank, usage] = r.err.split('\n');
  expect(first).toMatch(new RegExp(`^vlmoe-data${command ? ` ${command}` : ''}: `));
  expect(first).toMatch(line);
  expect(blank).toBe('');
  expect(usage).toMatch(new RegExp(`^usage: vlmoe-data ${command === '' || command === 'help' ? '<command>' : command}`));
}

const COMMANDS = ['convert', 'inspect', 'split', 'synth', 'tokenizer'] as const;

describe('vlmoe-data command line: help, version, usage errors (every command)', () => {
  test('--help / -h / help print the usage on stdout and exit 0', async () => {
    for (const args of [['--help'], ['-h'], ['help']]) {
      const r = await cli(...args);
      expect(r).toMatchObject({ code: 0, err: '' });
      expect(r.out).toMatch(/^usage: vlmoe-data <command>/);
    }
    for (const c of COMMANDS) {
      for (const args of [[c, '--help'], [c, '-h'], ['help', c], [c, 'some-arg', '--help']]) {
        const r = await cli(...args);
        expect(r, args.join(' ')).toMatchObject({ code: 0, err: '' });
        expect(r.out, args.join(' ')).toMatch(new RegExp(`^usage: vlmoe-data ${c}`));
      }
    }
  });

  test('--version prints the package version, for the tool and every command', async () => {
    for (const args of [['--version'], ...COMMANDS.map((c) => [c, '--version'])]) {
      expect(await cli(...args), args.join(' ')).toEqual({ code: 0, out: `vlmoe-data ${VERSION}\n`, err: '' });
    }
  });

  test('no arguments: the usage on stderr, exit 2', async () => {
    expectUsageError(await cli(), '', /a command is needed/);
  });

  test('an unknown option is named, with the usage, exit 2 (it used to be ignored by inspect)', async () => {
    const f = join(tmp.path, 'x.arrow');
    await writeArrowFile(f, 'captions', [{ image: new Uint8Array([1]), caption: ['a'], image_id: 'a', split: 'train' }]);
    expectUsageError(await cli('inspect', '--bogus', f), 'inspect', /unknown option --bogus$/);
    expectUsageError(await cli('convert', 'coco', 'a.json', 'b.arrow', '--imagse', 'x'), 'convert', /unknown option --imagse \(did you mean '--images'\?\)/);
    expectUsageError(await cli('synth', join(tmp.path, 's'), '--trian', '10'), 'synth', /unknown option --trian/);
    expectUsageError(await cli('tokenizer', 't.json', f, '--vocab', '10'), 'tokenizer', /unknown option --vocab/);
    expectUsageError(await cli('--bogus'), '', /unknown option --bogus/);
    expectUsageError(await cli('frobnicate'), '', /unknown command 'frobnicate'/);
    expectUsageError(await cli('inspct', f), '', /unknown command 'inspct' \(did you mean 'inspect'\?\)/);
    expectUsageError(await cli('help', 'nope'), 'help', /unknown command 'nope'/);
    // switches take no value; options need one
    expectUsageError(await cli('convert', 'coco', 'a', 'b', '--no-verify=yes'), 'convert', /option --no-verify takes no value/);
    expectUsageError(await cli('convert', 'flickr', 'a', 'b', '--split-list'), 'convert', /option --split-list needs a value/);
    expectUsageError(await cli('convert', 'flickr', 'a', 'b', '--images', '--split', 'x'), 'convert', /option --images needs a value/);
  });

  test('missing or extra arguments are named, exit 2', async () => {
    expectUsageError(await cli('inspect'), 'inspect', /needs at least one Arrow file/);
    expectUsageError(await cli('convert'), 'convert', /needs <kind> <input> <out\.arrow>/);
    expectUsageError(await cli('convert', 'coco', 'a.json'), 'convert', /needs <kind> <input> <out\.arrow>/);
    expectUsageError(await cli('convert', 'coco', 'a.json', 'b.arrow', 'c'), 'convert', /unexpected argument 'c'/);
    expectUsageError(await cli('convert', 'nope', 'a', 'b'), 'convert', /unknown dataset kind 'nope' \(kinds: coco, karpathy, flickr, vqav2, easy-vqa, nlvr1, nlvr2\)/);
    expectUsageError(await cli('convert', 'coco', 'a.json', 'b.arrow'), 'convert', /coco needs --images/);
    expectUsageError(await cli('convert', 'karpathy', 'a.json', 'b.arrow'), 'convert', /karpathy needs --split/);
    expectUsageError(await cli('synth'), 'synth', /needs <out-dir>/);
    expectUsageError(await cli('synth', 'a', 'b'), 'synth', /unexpected argument 'b'/);
    expectUsageError(await cli('tokenizer', 't.json'), 'tokenizer', /needs <out tokenizer\.json> and at least one Arrow file/);
    expectUsageError(await cli('--version', 'x'), '', /unexpected argument 'x'/);
  });

  test('numeric options are integers in range, named in the error', async () => {
    const conv = ['convert', 'easy-vqa', 'q.json', join(tmp.path, 'never.arrow')];
    for (const [args, cmd, msg] of [
      [[...conv, '--batch-rows', '1.5'], 'convert', /--batch-rows must be a positive integer, got '1\.5'/],
      [[...conv, '--batch-rows', '0'], 'convert', /--batch-rows must be a positive integer, got '0'/],
      [[...conv, '--batch-rows', '1e3'], 'convert', /--batch-rows must be a positive integer, got '1e3'/],
      [[...conv, '--batch-rows', ''], 'convert', /--batch-rows must be a positive integer, got ''/],
      [['convert', 'vqav2', 'q.json', 'o.arrow', '--images', 'd', '--vocab-from', 'a.json', '--min-answer-count', 'nine'], 'convert', /--min-answer-count must be a positive integer, got 'nine'/],
      [['convert', 'nlvr1', 'a.json', 'o.arrow', '--permutations', '0,7'], 'convert', /--permutations must be an integer in \[0, 5\], got '7'/],
      [['convert', 'nlvr1', 'a.json', 'o.arrow', '--permutations', '0'], 'convert', /--permutations takes two of 0\.\.5/],
      [['convert', 'nlvr1', 'a.json', 'o.arrow', '--permutations', '0,x'], 'convert', /--permutations must be an integer in \[0, 5\], got 'x'/],
      [['synth', 'd', '--train', '10.5'], 'synth', /--train must be an integer in \[0, 10000000\], got '10\.5'/],
      [['synth', 'd', '--val', 'abc'], 'synth', /--val must be an integer/],
      [['synth', 'd', '--seed=-1'], 'synth', /--seed must be an integer ≥ 0, got '-1'/],
      [['synth', 'd', '--seed', '-1'], 'synth', /option --seed needs a value \(got the option-like '-1'/],
      [['synth', 'd', '--image-size', '4'], 'synth', /--image-size must be an integer in \[8, 1024\], got '4'/],
      [['tokenizer', 't.json', 'a.arrow', '--vocab-size', '8000.5'], 'tokenizer', /--vocab-size must be an integer in \[5, \d+\], got '8000\.5'/],
      [['tokenizer', 't.json', 'a.arrow', '--vocab-size', '3'], 'tokenizer', /--vocab-size must be an integer in \[5, /],
      [['tokenizer', 't.json', 'a.arrow', '--min-frequency', '2.5'], 'tokenizer', /--min-frequency must be an integer ≥ 0, got '2\.5'/],
    ] as [string[], string, RegExp][]) {
      expectUsageError(await cli(...args), cmd, msg);
    }
    expectUsageError(await cli(...conv, '--on-error', 'ignore'), 'convert', /--on-error must be throw or skip, got 'ignore'/);
    expectUsageError(await cli(...conv, '--format', 'parquet'), 'convert', /--format must be file or stream, got 'parquet'/);
    expect(existsSync(join(tmp.path, 'never.arrow'))).toBe(false);
    expect(existsSync(join(here, 'd'))).toBe(false);
  });

  test('an option that does not apply to the dataset kind is an error naming both', async () => {
    for (const [kind, extra] of [
      ['coco', ['--permutations', '0,1']],
      ['nlvr2', ['--annotations', 'a.json']],
      ['coco', ['--split-list', 'l.txt']],
      ['karpathy', ['--split-list', 'l.txt']],
      ['vqav2', ['--split-list', 'l.txt']],
      ['easy-vqa', ['--split-list', 'l.txt']],
      ['nlvr1', ['--split-list', 'l.txt']],
      ['nlvr2', ['--split-list', 'l.txt']],
      ['flickr', ['--annotations', 'a.json']],
      ['coco', ['--answers', 'a.json']],
      ['easy-vqa', ['--vocab-from', 'a.json']],
      ['nlvr2', ['--split', 'train']],
      ['flickr', ['--min-answer-count', '3']],
    ] as [string, string[]][]) {
      const r = await cli('convert', kind, 'in.json', join(tmp.path, 'never.arrow'), '--images', 'd', ...extra);
      expectUsageError(r, 'convert', new RegExp(`${extra[0]} does not apply to ${kind} \\(${kind} takes `));
    }
    expectUsageError(await cli('convert', '--to-file', 'a.arrow', 'b.arrow', '--images', 'd'), 'convert', /--images does not apply to --to-file/);
    expectUsageError(await cli('convert', '--to-file', 'a.arrow'), 'convert', /--to-file takes <in\.arrow\|in\.parquet> <out\.arrow>, got 1 argument/);
    expectUsageError(await cli('convert', 'vqav2', 'q.json', 'o.arrow', '--images', 'd', '--answers', 'a.json', '--vocab-from', 'b.json'), 'convert', /--answers .* and --vocab-from .* exclude each other/);
    expectUsageError(await cli('convert', 'vqav2', 'q.json', 'o.arrow', '--images', 'd', '--answers', 'a.json', '--min-answer-count', '3'), 'convert', /--min-answer-count does not apply with --answers/);
    expect(existsSync(join(tmp.path, 'never.arrow'))).toBe(false);
  });

  test('a failure while running: a clear message on stderr, exit 1, no stack trace', async () => {
    const r = await cli('convert', 'coco', join(tmp.path, 'missing.json'), join(tmp.path, 'o.arrow'), '--images', tmp.path);
    expect(r.code).toBe(1);
    expect(r.out).toBe('');
    expect(r.err).toMatch(/^vlmoe-data: .*missing\.json does not exist \(expected a JSON file\)/);
    expect(r.err.trim().split('\n')).toHaveLength(1);
    const t = await cli('tokenizer', join(tmp.path, 't.json'), join(tmp.path, 'missing.arrow'));
    expect(t.code).toBe(1);
    expect(t.err).toMatch(/missing\.arrow: cannot open: ENOENT/);
  });
});

describe('vlmoe-data inspect names the file on every error', () => {
  test('missing, a directory, not Arrow, empty, truncated, corrupt footer, truncated stream — the good files still print', async () => {
    const d = join(tmp.path, 'inspect');
    mkdirSync(d, { recursive: true });
    const rows: CaptionRow[] = Array.from({ length: 30 }, (_, i) => ({ image: new Uint8Array([i, 1, 2]), caption: ['a dog', 'a cat'], image_id: `${i}.jpg`, split: 'train' }));
    const good = join(d, 'good.arrow');
    const goodStream = join(d, 'good.arrows');
    await writeArrowFile(good, 'captions', rows, { batchRows: 10 });
    await writeArrowFile(goodStream, 'captions', rows, { batchRows: 10, format: 'stream' });
    const f = readFileSync(good);
    const n = f.length;
    const footerLength = f.readInt32LE(n - 10);
    const bad: Record<string, Buffer | 'dir' | 'none'> = {
      'missing.arrow': 'none',
      'folder.arrow': 'dir',
      'text.arrow': Buffer.from('hello world, this is text and not Arrow'),
      'empty.arrow': Buffer.alloc(0),
      'truncated.arrow': f.subarray(0, n - 100),
      'footer_garbage.arrow': Buffer.concat([f.subarray(0, n - 10 - footerLength), Buffer.alloc(footerLength, 0xab), f.subarray(n - 10)]),
      'footer_length.arrow': (() => {
        const b = Buffer.from(f);
        b.writeInt32LE(0x7ffffff0, n - 10);
        return b;
      })(),
      'truncated_stream.arrows': readFileSync(goodStream).subarray(0, 700),
    };
    for (const [name, content] of Object.entries(bad)) {
      if (content === 'dir') mkdirSync(join(d, name));
      else if (content !== 'none') writeFileSync(join(d, name), content);
    }
    const files = Object.keys(bad).map((b) => join(d, b));
    const r = await cli('inspect', files[0]!, good, ...files.slice(1), goodStream);
    expect(r.code).toBe(1);
    const lines = r.err.trim().split('\n');
    expect(lines).toHaveLength(files.length);
    files.forEach((file, i) => expect(lines[i]).toMatch(new RegExp(`^vlmoe-data inspect: ${file.replace(/[.]/g, '\\.')}(:| batch)`)));
    expect(lines.join('\n')).not.toMatch(/\n\s+at /);
    expect(r.err).toMatch(/folder\.arrow: is a directory, not an Arrow file/);
    expect(r.err).toMatch(/footer_garbage\.arrow: corrupt Arrow IPC file/);
    expect(r.err).toMatch(/footer_length\.arrow: corrupt Arrow IPC file \(its footer length 2147483632 does not fit/);
    expect(r.err).toMatch(/truncated\.arrow: truncated Arrow IPC file/);
    expect(r.out).toContain(`${good}\n  format: IPC file, kind: captions, rows: 30, record batches: 3`);
    expect(r.out).toContain(`${goodStream}\n  format: IPC stream, kind: captions, rows: 30, record batches: 3`);
  });
});

describe('vlmoe-data convert checks every image by decoding it', () => {
  const d = join(tmp.path, 'trunc');
  const ann = join(d, 'captions_train2017.json');
  let truncated = '';
  beforeAll(async () => {
    // three COCO-mini images, the middle one cut to 60% of its bytes: its header is intact
    mkdirSync(join(d, 'images'), { recursive: true });
    const coco = JSON.parse(readFileSync(join(SHARED_DATA, 'coco-mini/annotations/captions_train2017.json'), 'utf8'));
    coco.images = coco.images.slice(0, 3);
    const src = join(SHARED_DATA, 'coco-mini/train2017');
    for (const im of coco.images) symlinkSync(join(src, im.file_name), join(d, 'images', im.file_name));
    const name = 'cut_' + coco.images[1].file_name;
    const bytes = readFileSync(join(src, coco.images[1].file_name));
    truncated = join(d, 'images', name);
    writeFileSync(truncated, bytes.subarray(0, Math.floor(bytes.length * 0.6)));
    coco.images[1].file_name = name;
    writeFileSync(ann, JSON.stringify(coco));
  });

  test('the truncated JPEG passes a header check', async () => {
    const meta = await sharp(readFileSync(truncated)).metadata();
    expect(meta).toMatchObject({ format: 'jpeg' });
    expect(meta.width).toBeGreaterThan(0);
  });

  test('default: stops with the file, where the input names it and the row (exit 1, nothing written)', async () => {
    const out = join(d, 'a.arrow');
    const r = await cli('convert', 'coco', ann, out, '--images', join(d, 'images'));
    expect(r.code).toBe(1);
    expect(r.err).toMatch(new RegExp(`^vlmoe-data: image ${truncated.replace(/[.]/g, '\\.')}: does not decode: .*\\(${ann.replace(/[.]/g, '\\.')} images\\[1\\]; row 1 of ${out.replace(/[.]/g, '\\.')}\\)\\n$`));
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(d).filter((f) => f.includes('.tmp-'))).toEqual([]);
  });

  test('--on-error skip lists each skipped image with its reason', async () => {
    const out = join(d, 'b.arrow');
    const r = await cli('convert', 'coco', ann, out, '--images', join(d, 'images'), '--on-error', 'skip');
    expect(r).toMatchObject({ code: 0, err: '' });
    expect(r.out).toContain(`${out}: 2 rows, 2 images, 10 texts`);
    expect(r.out).toMatch(new RegExp(`  skipped 1 image\\(s\\):\\n    ${truncated.replace(/[.]/g, '\\.')}: does not decode: .+ \\(${ann.replace(/[.]/g, '\\.')} images\\[1\\]\\)\\n`));
  });

  test('--no-verify keeps the cheap header check: the truncated image gets through', async () => {
    const out = join(d, 'c.arrow');
    const r = await cli('convert', 'coco', ann, out, '--images', join(d, 'images'), '--no-verify');
    expect(r).toMatchObject({ code: 0, err: '' });
    expect(r.out).toContain(`${out}: 3 rows, 3 images, 15 texts`);
    // ... but a file that is not an image at all is still caught
    writeFileSync(join(d, 'images', 'cut_' + readdirSync(join(d, 'images')).find((f) => !f.startsWith('cut_'))), 'not an image');
    const coco = JSON.parse(readFileSync(ann, 'utf8'));
    coco.images[0].file_name = 'cut_' + coco.images[0].file_name;
    writeFileSync(join(d, 'captions_notimage.json'), JSON.stringify(coco));
    const bad = await cli('convert', 'coco', join(d, 'captions_notimage.json'), join(d, 'e.arrow'), '--images', join(d, 'images'), '--no-verify');
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/does not decode: .*images\[0\]; row 0 of/);
  });
});

const bin = resolve(here, '../bin/vlmoe-data.js');
const built = existsSync(resolve(here, '../dist/cli.js'));

function run(...args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', env: { ...process.env, VLMOE_PROGRESS: '0' } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe.runIf(built)('the installed command (bin/vlmoe-data.js → dist; run `npm run build` first)', () => {
  test('convert + inspect easy-VQA test', () => {
    const out = join(tmp.path, 'e.arrow');
    const c = run('convert', 'easy-vqa', join(SHARED_DATA, 'easy-vqa/test/questions.json'), out);
    expect(c.err).toBe('');
    expect(c.code).toBe(0);
    expect(c.out).toContain(`${out}: 1000 rows, 1000 images, 9673 texts`);
    expect(c.out).toContain('e_answers.json');
    const i = run('inspect', out);
    expect(i.code).toBe(0);
    expect(i.out).toContain('format: IPC file, kind: vqa, rows: 1000');
    expect(i.out).toContain('answer_scores: list<list<double>>');
  });

  test('exit statuses: 0 help/version, 2 usage errors, 1 failures (never a stack trace)', () => {
    expect(run('--help')).toMatchObject({ code: 0, err: '' });
    expect(run('--version')).toEqual({ code: 0, out: `vlmoe-data ${VERSION}\n`, err: '' });
    const none = run();
    expect(none.code).toBe(2);
    expect(none.err).toMatch(/usage: vlmoe-data <command>/);
    expect(none.out).toBe('');
    const bogus = run('inspect', '--bogus', join(tmp.path, 'x.arrow'));
    expect(bogus.code).toBe(2);
    expect(bogus.err).toMatch(/^vlmoe-data inspect: unknown option --bogus\n\nusage: vlmoe-data inspect/);
    const missing = run('inspect', join(tmp.path, 'missing.arrow'));
    expect(missing.code).toBe(1);
    expect(missing.err).toMatch(/missing\.arrow: cannot open: ENOENT/);
    const dir = run('inspect', tmp.path);
    expect(dir.code).toBe(1);
    expect(dir.err).toBe(`vlmoe-data inspect: ${tmp.path}: is a directory, not an Arrow file\n`);
    expect(`${missing.err}${dir.err}`).not.toMatch(/\n\s+at /);
  });
});

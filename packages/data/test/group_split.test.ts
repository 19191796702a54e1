/**
 * `vlmoe-data split` (groupSplit): a dev split carved from the real training sets of
 * ../shared/data — whole images / statements on one side, every row on exactly one side with
 * its values unchanged, the VQA sidecars following their rows, the same files for the same
 * seed whatever the row order, and bad input named.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { runCli } from '../src/cli/main.js';
import { ArrowReader } from '../src/arrow/reader.js';
import { writeArrowFile } from '../src/arrow/writer.js';
import { connectedGroups, heldOutGroups } from '../src/arrow/group_split.js';
import { convertEasyVqa, convertNlvr1 } from '../src/converters/index.js';
import type { CaptionRow, DatasetKind } from '../src/arrow/schemas.js';
import { SHARED_DATA, tempDir } from './helpers.js';

process.env.VLMOE_PROGRESS = '0';
const tmp = tempDir();
afterAll(() => tmp.cleanup());
const at = (f: string) => join(tmp.path, f);

async function cli(...args: string[]) {
  let out = '';
  let err = '';
  const code = await runCli(args, { out: (t) => void (out += t), err: (t) => void (err += t) });
  return { code, out, err };
}

async function rows(path: string, kind: DatasetKind): Promise<Record<string, unknown>[]> {
  const r = await ArrowReader.open(path, { kind });
  const out: Record<string, unknown>[] = [];
  for await (const { row } of r.rows()) out.push({ ...(row as unknown as Record<string, unknown>) });
  await r.close();
  return out;
}
const json = (p: string) => JSON.parse(readFileSync(p, 'utf8')) as Record<string, unknown>;

const quiet = { progress: false, verifyImages: 'header' } as const;

describe('vlmoe-data split on the real training sets', () => {
  beforeAll(async () => {
    const vqa = join(SHARED_DATA, 'easy-vqa');
    await convertEasyVqa({ questions: join(vqa, 'test/questions.json'), imageDir: join(vqa, 'test/images'), answers: join(vqa, 'answers.txt') }, at('vqa_all.arrow'), quiet);
    const nlvr = join(SHARED_DATA, 'nlvr1/test');
    await convertNlvr1({ json: join(nlvr, 'test.json'), imageDir: join(nlvr, 'images') }, at('nlvr_all.arrow'), quiet);
  }, 120_000);

  test('easy-VQA: whole images held out, rows unchanged, annotations split by question, answers copied', async () => {
    const r = await cli('split', at('vqa_all.arrow'), at('vqa_train.arrow'), at('vqa_val.arrow'), '--fraction', '0.1', '--seed', '3');
    expect(r.code, r.err).toBe(0);
    expect(r.out).toContain('vqa, split by image (image_id), seed 3');
    expect(r.out).toMatch(/vqa_val\.arrow: 100 rows \(100 groups held out\)/);
    const all = await rows(at('vqa_all.arrow'), 'vqa');
    const [rest, held] = [await rows(at('vqa_train.arrow'), 'vqa'), await rows(at('vqa_val.arrow'), 'vqa')];
    expect(all.length).toBe(1000);
    expect(held.length).toBe(100); // 1000 images, one row each
    expect(rest.length).toBe(900);
    const ids = (rs: Record<string, unknown>[]) => rs.map((x) => x.image_id as number);
    expect(new Set([...ids(rest), ...ids(held)]).size).toBe(1000);
    // each side is the input's rows, in the input's order, with the same values (image bytes included)
    const heldIds = new Set(ids(held));
    expect(held).toEqual(all.filter((x) => heldIds.has(x.image_id as number)));
    expect(rest).toEqual(all.filter((x) => !heldIds.has(x.image_id as number)));
    // the annotations sidecar: the input's entries, partitioned by the questions of each side's rows
    const ann = json(at('vqa_all_annotations.json'));
    const qids = (rs: Record<string, unknown>[]) => rs.flatMap((x) => (x.question_id as number[]).map(String));
    expect(json(at('vqa_val_annotations.json'))).toEqual(Object.fromEntries(qids(held).map((q) => [q, ann[q]])));
    expect(json(at('vqa_train_annotations.json'))).toEqual(Object.fromEntries(qids(rest).map((q) => [q, ann[q]])));
    expect(Object.keys(json(at('vqa_val_annotations.json'))).length + Object.keys(json(at('vqa_train_annotations.json'))).length).toBe(9673);
    for (const side of ['train', 'val']) expect(readFileSync(at(`vqa_${side}_answers.json`), 'utf8')).toBe(readFileSync(at('vqa_all_answers.json'), 'utf8'));
  }, 60_000);

  test('NLVR1: no statement on both sides; the same seed gives the same bytes, another seed other statements', async () => {
    expect((await cli('split', at('nlvr_all.arrow'), at('n_a.arrow'), at('n_b.arrow'), '--fraction', '0.2')).code).toBe(0);
    expect((await cli('split', at('nlvr_all.arrow'), at('n_a2.arrow'), at('n_b2.arrow'), '--fraction', '0.2')).code).toBe(0);
    expect((await cli('split', at('nlvr_all.arrow'), at('n_a3.arrow'), at('n_b3.arrow'), '--fraction', '0.2', '--seed', '1')).code).toBe(0);
    expect(readFileSync(at('n_b2.arrow')).equals(readFileSync(at('n_b.arrow')))).toBe(true);
    expect(readFileSync(at('n_a2.arrow')).equals(readFileSync(at('n_a.arrow')))).toBe(true);
    const all = await rows(at('nlvr_all.arrow'), 'nlvr2');
    const [a, b, b3] = [await rows(at('n_a.arrow'), 'nlvr2'), await rows(at('n_b.arrow'), 'nlvr2'), await rows(at('n_b3.arrow'), 'nlvr2')];
    const statement = (x: Record<string, unknown>) => (x.questions as string[])[0]!;
    const statements = new Set(all.map(statement));
    expect(statements.size).toBeLessThan(all.length); // NLVR1 writes a statement about several images
    const heldStatements = new Set(b.map(statement));
    // NLVR1 identifiers are <split>-<statement id>-<image>, and a sentence may recur under another
    // id: a group is every row reachable through a shared statement id or text (brute force here)
    const sid = (x: Record<string, unknown>) => (x.identifier as string).replace(/-[^-]*$/, '');
    // breadth-first over rows, linking through shared ids and texts
    const byKey = new Map<string, number[]>();
    all.forEach((x, r) => { for (const k of [`id ${sid(x)}`, `s ${statement(x)}`]) byKey.set(k, [...(byKey.get(k) ?? []), r]); });
    const seen = new Set<number>();
    const groups: Set<number>[] = [];
    for (let r0 = 0; r0 < all.length; r0++) {
      if (seen.has(r0)) continue;
      const g = new Set<number>([r0]);
      seen.add(r0);
      for (const queue = [r0]; queue.length; ) {
        const x = all[queue.pop()!]!;
        for (const k of [`id ${sid(x)}`, `s ${statement(x)}`]) for (const r of byKey.get(k)!) if (!seen.has(r)) (seen.add(r), g.add(r), queue.push(r));
      }
      groups.push(g);
    }
    expect(groups.length).toBeLessThan(new Set(all.map(sid)).size); // some sentences do recur under another id
    const heldIds = new Set(b.map((x) => x.identifier));
    const heldGroups = groups.filter((g) => [...g].some((r) => heldIds.has(all[r]!.identifier)));
    expect(heldGroups.every((g) => [...g].every((r) => heldIds.has(all[r]!.identifier)))).toBe(true);
    expect(heldGroups.length).toBe(Math.round(0.2 * groups.length));
    expect(a.some((x) => new Set(b.map(sid)).has(sid(x)))).toBe(false);
    expect(a.some((x) => heldStatements.has(statement(x)))).toBe(false);
    expect(a.length + b.length).toBe(all.length);
    expect(new Set([...a, ...b].map((x) => x.identifier)).size).toBe(all.length);
    const other = new Set(b3.map(statement));
    expect([...other].filter((s) => heldStatements.has(s)).length).toBeLessThan(other.size);
  }, 60_000);
});

const make = (i: number): CaptionRow => ({ image: new Uint8Array([i & 255, i >> 8]), caption: [`a caption ${i}`, `another ${i}`], image_id: `img${i}`, split: 'train' });

describe('the held-out groups', () => {
  test('are round(fraction × groups), whatever the order of the rows', async () => {
    const n = 257;
    const forward = Array.from({ length: n }, (_, i) => make(i));
    await writeArrowFile(at('c_fwd.arrow'), 'captions', forward, { batchRows: 50 });
    await writeArrowFile(at('c_rev.arrow'), 'captions', [...forward].reverse(), { batchRows: 7 });
    for (const f of ['fwd', 'rev']) expect((await cli('split', at(`c_${f}.arrow`), at(`c_${f}_rest.arrow`), at(`c_${f}_held.arrow`), '--fraction', '0.25')).code).toBe(0);
    const held = async (f: string) => (await rows(at(`c_${f}_held.arrow`), 'captions')).map((x) => x.image_id as string);
    const [hf, hr] = [await held('fwd'), await held('rev')];
    expect(hf.length).toBe(Math.round(0.25 * n));
    expect([...hr].reverse()).toEqual(hf); // the same images, each file in its input's order
    // repeated keys count once; a larger fraction holds out a superset (the same ranking)
    const keys = forward.flatMap((r) => [r.image_id, r.image_id]);
    const quarter = heldOutGroups(keys, 0.25);
    expect(quarter.size).toBe(Math.round(0.25 * n));
    expect(heldOutGroups([...keys].reverse(), 0.25)).toEqual(quarter);
    const half = heldOutGroups(keys, 0.5);
    expect(half.size).toBe(Math.round(0.5 * n));
    expect([...quarter].every((k) => half.has(k))).toBe(true);
  });

  test('connected groups: rows sharing any key are one group, named by its least key', () => {
    expect(connectedGroups([['b', 'x'], ['c'], ['a', 'y'], ['y', 'x'], ['d', 'c'], ['e']])).toEqual(['a', 'c', 'a', 'a', 'c', 'e']);
    expect(connectedGroups([['k'], ['k'], ['j']])).toEqual(['k', 'k', 'j']);
  });

  test('bad input is named: the fraction, the files, a fraction that holds nothing out', async () => {
    const f = at('c_fwd.arrow');
    for (const [args, msg] of [
      [[f, at('x.arrow'), at('y.arrow')], /needs --fraction F/],
      [[f, at('x.arrow'), at('y.arrow'), '--fraction', '0'], /--fraction must be a number in \(0, 1\), got '0'/],
      [[f, at('x.arrow'), at('y.arrow'), '--fraction', '1'], /--fraction must be a number in \(0, 1\), got '1'/],
      [[f, at('x.arrow'), at('y.arrow'), '--fraction', 'tenth'], /--fraction must be a number in \(0, 1\), got 'tenth'/],
      [[f, at('x.arrow'), at('y.arrow'), '--fraction', '0.1', '--seed', '1.5'], /--seed must be an integer ≥ 0, got '1\.5'/],
      [[f, at('x.arrow')], /needs <in\.arrow> <rest\.arrow> <held\.arrow>/],
    ] as [string[], RegExp][]) {
      const r = await cli('split', ...args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.err.split('\n')[0]).toMatch(msg);
    }
    const same = await cli('split', f, f, at('y.arrow'), '--fraction', '0.5');
    expect(same.code).toBe(1);
    expect(same.err).toMatch(/the input and the two outputs must be three different files/);
    const none = await cli('split', f, at('x.arrow'), at('y.arrow'), '--fraction', '0.001');
    expect(none.code).toBe(1);
    expect(none.err).toMatch(/c_fwd\.arrow: a fraction of 0\.001 of 257 group\(s\) holds none out/);
    const all = await cli('split', f, at('x.arrow'), at('y.arrow'), '--fraction', '0.999');
    expect(all.code).toBe(1);
    expect(all.err).toMatch(/c_fwd\.arrow: a fraction of 0\.999 of 257 group\(s\) holds every one out/);
    const missing = await cli('split', at('nope.arrow'), at('x.arrow'), at('y.arrow'), '--fraction', '0.5');
    expect(missing.code).toBe(1);
    expect(missing.err).toContain('nope.arrow');
    for (const o of ['x.arrow', 'y.arrow']) expect(existsSync(at(o))).toBe(false);
    // a failure with one output open (the other's folder cannot be made: its parent is a file) leaves nothing behind
    const stuck = await cli('split', f, at('z.arrow'), join(f, 'held.arrow'), '--fraction', '0.5');
    expect(stuck.code).toBe(1);
    expect(readdirSync(tmp.path).filter((n) => n.includes('z.arrow'))).toEqual([]);
    // a row without its group key is named
    await writeArrowFile(at('c_null.arrow'), 'captions', [make(0), { ...make(1), image_id: null as unknown as string }]);
    const nul = await cli('split', at('c_null.arrow'), at('x.arrow'), at('y.arrow'), '--fraction', '0.5');
    expect(nul.code).toBe(1);
    expect(nul.err).toMatch(/c_null\.arrow.*row 1.*image_id.*null, so the row belongs to no group/);
  });
});

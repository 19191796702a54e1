/**
 * A recipe's `data`: the specs of the shapes world ("shapes", "shapes:<folder>", data/shapes)
 * and of its rich variant ("shapes-rich", "shapes-rich:<folder>", data/shapes-rich), and what
 * openDataset does with a folder that holds the other concept set's world. (Generating the rich
 * world at its default sizes takes tens of seconds; the generator itself is tested with small
 * splits in packages/data/test/synthetic_rich.test.ts.)
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { ensureDefaultDataset, readShapesWorldManifest } from '@vlmoe/data';
import { SHAPES_DEFAULT_DIR, SHAPES_RICH_DEFAULT_DIR, absoluteDataSpec, openDataset, resolveDataSpec } from '../src/recipes/dataset.js';

process.env.VLMOE_PROGRESS = '0';
const dir = mkdtempSync(join(tmpdir(), 'vlmoe-dataset-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const SMALL = { seed: 2, imageSize: 16, splits: { train: 20, val: 6, test: 6 }, nlvrPairs: { train: 4, val: 2, test: 2 } };
const hashes = (d: string) => Object.fromEntries(readdirSync(d).sort().map((f) => [f, createHash('sha256').update(readFileSync(join(d, f))).digest('hex')]));

describe('data specs', () => {
  test('"shapes-rich", "shapes-rich:<folder>" and the path data/shapes-rich name the rich shapes world', () => {
    expect(SHAPES_RICH_DEFAULT_DIR).toBe('data/shapes-rich');
    expect(resolveDataSpec('shapes-rich')).toEqual({ dir: 'data/shapes-rich', shapes: true, concepts: 'rich' });
    expect(resolveDataSpec('shapes-rich:/tmp/w')).toEqual({ dir: '/tmp/w', shapes: true, concepts: 'rich' });
    expect(resolveDataSpec('shapes-rich:rel/w')).toEqual({ dir: 'rel/w', shapes: true, concepts: 'rich' });
    for (const p of ['data/shapes-rich', './data/shapes-rich', 'data/shapes-rich/']) expect(resolveDataSpec(p)).toEqual({ dir: p, shapes: true, concepts: 'rich' });
    expect(() => resolveDataSpec('shapes-rich:')).toThrow(`data 'shapes-rich:' names no folder (write "shapes-rich" for data/shapes-rich, or "shapes-rich:<folder>")`);
    expect(absoluteDataSpec('shapes-rich')).toBe(`shapes-rich:${resolve('data/shapes-rich')}`);
    expect(absoluteDataSpec('data/shapes-rich')).toBe(`shapes-rich:${resolve('data/shapes-rich')}`);
    expect(absoluteDataSpec('shapes-rich:rel/w')).toBe(`shapes-rich:${resolve('rel/w')}`);
    expect(resolveDataSpec(absoluteDataSpec('shapes-rich:rel/w'))).toEqual({ dir: resolve('rel/w'), shapes: true, concepts: 'rich' });
  });

  test('the standard specs are unchanged; other paths are prepared datasets', () => {
    expect(SHAPES_DEFAULT_DIR).toBe('data/shapes');
    expect(resolveDataSpec('shapes')).toEqual({ dir: 'data/shapes', shapes: true, concepts: 'standard' });
    expect(resolveDataSpec('shapes:/tmp/w')).toEqual({ dir: '/tmp/w', shapes: true, concepts: 'standard' });
    expect(resolveDataSpec('data/shapes')).toEqual({ dir: 'data/shapes', shapes: true, concepts: 'standard' });
    expect(absoluteDataSpec('shapes')).toBe(`shapes:${resolve('data/shapes')}`);
    for (const p of ['data/shapes-richer', 'data/other', 'shapes-rich-x', 'my/shapes-rich']) {
      expect(resolveDataSpec(p)).toEqual({ dir: p, shapes: false, concepts: null });
      expect(absoluteDataSpec(p)).toBe(resolve(p));
    }
  });
});

describe('openDataset and a folder of the other concept set', () => {
  test('"shapes-rich:<folder>" on a standard world, and "shapes:<folder>" on a rich one, are errors naming both; nothing is overwritten', async () => {
    const std = join(dir, 'std');
    await ensureDefaultDataset(std, SMALL);
    const before = hashes(std);
    await expect(openDataset(`shapes-rich:${std}`)).rejects.toThrow(`${std} holds the standard shapes world (see its manifest.json), not the rich one asked for`);
    expect(hashes(std)).toEqual(before);

    const rich = join(dir, 'rich');
    await ensureDefaultDataset(rich, { ...SMALL, concepts: 'rich' });
    const richBefore = hashes(rich);
    await expect(openDataset(`shapes:${rich}`)).rejects.toThrow(`${rich} holds the rich shapes world (see its manifest.json), not the standard one asked for`);
    expect(hashes(rich)).toEqual(richBefore);
    expect(readShapesWorldManifest(rich)!.options.concepts).toBe('rich');
  });

  test('a prepared-dataset error mentions the rich spec too', async () => {
    await expect(openDataset(join(dir, 'no-such-data'))).rejects.toThrow(/"shapes:<folder>" in another folder, "shapes-rich" the rich shapes world in data\/shapes-rich/);
  });
});

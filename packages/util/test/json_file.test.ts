import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readJsonFile } from '../src/index.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vlmoe-util-json-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('readJsonFile', () => {
  it('parses a file', () => {
    const p = path.join(dir, 'ok.json');
    fs.writeFileSync(p, '{"a": [1, 2.5, "x"], "b": null}\n');
    expect(readJsonFile(p)).toEqual({ a: [1, 2.5, 'x'], b: null });
  });

  it('a missing file names the file and what it should be', () => {
    const p = path.join(dir, 'nope.json');
    expect(() => readJsonFile(p, 'recipe config (JSON)')).toThrow(`${p} does not exist (expected a recipe config (JSON))`);
  });

  it('a directory or bad JSON names the file and the reason', () => {
    expect(() => readJsonFile(dir, 'run record')).toThrow(`${dir}: cannot read the run record (EISDIR)`);
    const p = path.join(dir, 'bad.json');
    fs.writeFileSync(p, '{"a": ');
    expect(() => readJsonFile(p, 'tokenizer.json')).toThrow(new RegExp(`^${p.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: tokenizer\\.json is not valid JSON: `));
  });
});

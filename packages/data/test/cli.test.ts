import { afterAll, describe, expect, test } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SHARED_DATA, tempDir } from './helpers.js';

const cli = resolve(dirname(fileURLToPath(import.meta.url)), '../dist/cli.js');
const tmp = tempDir();
afterAll(() => tmp.cleanup());

function run(...args: string[]) {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', env: { ...process.env, VLMOE_PROGRESS: '0' } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe.runIf(existsSync(cli))('vlmoe-data CLI (built)', () => {
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

  test('bad usage exits 2 with a message', () => {
    const a = run('convert', 'nope', 'a', 'b');
    expect(a.code).toBe(2);
    expect(a.err).toMatch(/unknown dataset kind 'nope'/);
    const b = run('convert', 'coco', join(SHARED_DATA, 'coco-mini/annotations/captions_train2017.json'), join(tmp.path, 'c.arrow'));
    expect(b.code).toBe(2);
    expect(b.err).toMatch(/convert coco needs --images/);
    const c = run('inspect', join(tmp.path, 'missing.arrow'));
    expect(c.code).toBe(2);
    expect(c.err).toMatch(/missing\.arrow: cannot open: ENOENT/);
    expect(run('frobnicate').code).toBe(2);
    expect(run('--help').code).toBe(0);
  });
});

/**
 * The docs test: every README's commands and programs run as a user types them.
 *
 * For each README (root, packages/*, tools/*, docs/*), in a fresh scratch folder that sees the
 * repository's `node_modules`, `packages` and `tools` (as the repository root does after
 * `npm ci && npm run build`): the blocks marked `sh run` run line by line, the TypeScript
 * blocks are type-checked (tsc, strict) and run, the JavaScript blocks run with node, all in
 * document order; each must exit 0. Blocks marked `no-run` / `fragment` are only shown; every
 * block must carry a marking (readme_blocks.ts has the conventions).
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { blocks, commands, isCode, isShell, isTs, markingProblem, readmes, type Block } from './readme_blocks.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const env = { ...process.env, VLMOE_PROGRESS: '0' };
const all = readmes(root).map((r) => ({ readme: r, blocks: blocks(root, r) }));

function scratch(): string {
  const dir = mkdtempSync(join(tmpdir(), 'vlmoe-docs-'));
  for (const d of ['node_modules', 'packages', 'tools']) symlinkSync(join(root, d), join(dir, d));
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'docs-scratch', private: true, type: 'module' }));
  return dir;
}

const where = (b: Block) => `${b.readme}:${b.line}`;

function sh(cmd: string, cwd: string, b: Block): void {
  const r = spawnSync('bash', ['-e', '-o', 'pipefail', '-c', cmd], { cwd, env, encoding: 'utf8', timeout: 300_000 });
  expect(r.status, `${where(b)}: \`${cmd}\` exited ${r.status ?? r.signal}\n${r.stdout.slice(-3000)}\n${r.stderr.slice(-3000)}`).toBe(0);
}

describe('README code blocks', () => {
  test('every block is marked: shell blocks `run` or `no-run`, code blocks a program or a `fragment`', () => {
    const problems = all.flatMap(({ blocks: bs }) => bs.map((b) => [where(b), markingProblem(b)] as const).filter(([, p]) => p !== null));
    expect(problems).toEqual([]);
    // the conventions are used: something runs in every README that shows commands
    expect(all.flatMap(({ blocks: bs }) => bs).filter((b) => isShell(b) && b.flags.includes('run')).length).toBeGreaterThan(3);
  });

  for (const { readme, blocks: bs } of all) {
    const runnable = bs.filter((b) => b.file !== null || (isShell(b) && b.flags.includes('run')) || (isCode(b) && !b.flags.includes('fragment')));
    if (!runnable.some((b) => b.file === null)) continue;
    test(`${readme}: the commands and programs run as shown`, () => {
      const dir = scratch();
      try {
        // the TypeScript programs are type-checked together first (one tsc run)
        const tsFiles = runnable.filter((b) => isTs(b) && b.file === null).map((b) => `block_${b.line}.ts`);
        runnable.forEach((b) => {
          if (isTs(b) && b.file === null) writeFileSync(join(dir, `block_${b.line}.ts`), b.body);
        });
        if (tsFiles.length) {
          writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({
            compilerOptions: { target: 'es2022', module: 'nodenext', moduleResolution: 'nodenext', strict: true, skipLibCheck: true, outDir: 'out', rootDir: '.', types: ['node'] },
            files: tsFiles,
          }));
          const tsc = spawnSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], { cwd: dir, env, encoding: 'utf8' });
          expect(tsc.status, `${readme}: the TypeScript blocks do not type-check:\n${tsc.stdout}${tsc.stderr}`).toBe(0);
        }
        for (const b of runnable) {
          if (b.file !== null) {
            mkdirSync(dirname(join(dir, b.file)), { recursive: true });
            writeFileSync(join(dir, b.file), b.body);
          } else if (isShell(b)) for (const c of commands(b)) sh(c, dir, b);
          else if (isTs(b)) sh(`node out/block_${b.line}.js`, dir, b);
          else {
            // JavaScript as a user pastes it: into node --input-type=module
            const r = spawnSync(process.execPath, ['--input-type=module'], { cwd: dir, env, input: b.body, encoding: 'utf8', timeout: 300_000 });
            expect(r.status, `${where(b)}: the JavaScript block exited ${r.status ?? r.signal}\n${r.stdout.slice(-3000)}\n${r.stderr.slice(-3000)}`).toBe(0);
          }
        }
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }, 900_000);
  }
});

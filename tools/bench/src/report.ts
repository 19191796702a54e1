/** Result tables and JSON files shaped as DESIGN.md asks (tools/bench/results/<name>.json). */
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync, renameSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as T from '@vlmoe/tensor';

export interface Case {
  case: string;
  unit: string;
  ours: number;
  peer: number | null;
  peerName: string;
  /** ours / peer when higher is better, peer / ours when lower is better (>1 = we win). */
  ratio: number | null;
  better: 'lower' | 'higher';
}

export function makeCase(name: string, unit: string, ours: number, peer: number | null, peerName: string, better: 'lower' | 'higher'): Case {
  const ratio = peer === null || peer === 0 || ours === 0 ? null : better === 'higher' ? ours / peer : peer / ours;
  return { case: name, unit, ours, peer, peerName, ratio, better };
}

export function machine(): Record<string, unknown> {
  const c = cpus();
  return { cpu: c[0]?.model ?? 'unknown', cores: c.length, memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version, native: T.nativeInfo() };
}

const fmt = (v: number | null, digits = 2) => (v === null ? '—' : v >= 100 ? v.toFixed(0) : v.toFixed(digits));

export function printTable(title: string, cases: Case[]): void {
  const rows = cases.map((c) => [c.case, c.unit, fmt(c.ours), fmt(c.peer), c.peerName, c.ratio === null ? '—' : `${c.ratio.toFixed(2)}x`]);
  const head = ['case', 'unit', 'ours', 'peer', 'peer name', 'ratio (>1 = ours better)'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => `| ${r.map((v, i) => v.padEnd(widths[i]!)).join(' | ')} |`;
  console.log(`\n${title}\n`);
  console.log(line(head));
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const r of rows) console.log(line(r));
}

export function writeResults(name: string, cases: Case[], extra: Record<string, unknown> = {}): string {
  const dir = join(dirname(fileURLToPath(import.meta.url)), '..', 'results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${name}.json`);
  const tmp = `${file}.tmp`;
  writeFileSync(tmp, JSON.stringify({ name, machine: machine(), ...extra, cases }, null, 2));
  renameSync(tmp, file);
  return file;
}

/** Best-of-`reps` seconds per call of fn, after warm-up, each rep at least `minTime` s. */
export function timeit(fn: () => void, opts: { reps?: number; minTime?: number; warmup?: number } = {}): number {
  const reps = opts.reps ?? 5, minTime = opts.minTime ?? 0.2;
  for (let i = 0; i < (opts.warmup ?? 2); ++i) fn();
  let best = Infinity;
  for (let r = 0; r < reps; ++r) {
    let n = 0;
    const t0 = process.hrtime.bigint();
    let el = 0;
    do {
      fn();
      n++;
      el = Number(process.hrtime.bigint() - t0) / 1e9;
    } while (el < minTime);
    best = Math.min(best, el / n);
  }
  return best;
}

/** Our thread settings: the pool's default (all cores) and 1 — ours reports its best, like the peers. */
export function ourThreadSettings(): number[] {
  return [...new Set([T.nativeInfo().threads, 1])];
}

/**
 * Runs `body` at each of our thread settings (the pool is put back to its default afterwards,
 * also when `body` throws).
 */
export function forEachOurThreadSetting(body: (threads: number) => void): void {
  const settings = ourThreadSettings();
  try {
    for (const t of settings) {
      T.setNumThreads(t);
      body(t);
    }
  } finally {
    T.setNumThreads(settings[0]!);
  }
}

/** The fastest of `time()` (seconds) over our thread settings, and the setting that gave it. */
export function bestOverOurThreads(time: () => number): { seconds: number; threads: number } {
  let best = { seconds: Infinity, threads: ourThreadSettings()[0]! };
  forEachOurThreadSetting((t) => {
    const s = time();
    if (s < best.seconds) best = { seconds: s, threads: t };
  });
  return best;
}

/** The median of a non-empty list (the mean of the middle two for an even count). */
export function median(v: readonly number[]): number {
  if (v.length === 0) throw new Error('median of an empty list');
  const s = [...v].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/**
 * Times `warmup + steps` calls of `step(i)`: the milliseconds of the last `steps`, their
 * median, and what the last call returned.
 */
export function timeSteps<R>(step: (i: number) => R, warmup: number, steps: number): { ms: number[]; medianMs: number; last: R } {
  const ms: number[] = [];
  let last!: R;
  for (let i = 0; i < warmup + steps; i++) {
    const t0 = process.hrtime.bigint();
    last = step(i);
    const dt = Number(process.hrtime.bigint() - t0) / 1e6;
    if (i >= warmup) ms.push(dt);
  }
  return { ms, medianMs: median(ms), last };
}

/** The last line of a child's stdout, parsed as JSON (children print their result last). */
export function lastJsonLine<R>(stdout: string, what: string): R {
  const line = stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(line) as R;
  } catch {
    throw new Error(`${what}: its last line of output is not JSON: ${JSON.stringify(line.slice(0, 200))}`);
  }
}

/** This process's environment with `changes` applied (an undefined value removes the variable). */
export function childEnv(changes: Record<string, string | undefined>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const [k, v] of Object.entries(changes)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

/**
 * Runs `node <script> <mode> <JSON args>` in a child process (its own pool, peak RSS and
 * environment; `env` entries set to undefined are removed) and returns the JSON it printed
 * last. `script` defaults to this benchmark's main.js, whose child modes are listed there.
 */
export function runChild<R>(mode: string, args: unknown, opts: { env?: Record<string, string | undefined>; script?: string; what?: string } = {}): R {
  const script = opts.script ?? fileURLToPath(new URL('./main.js', import.meta.url));
  const env = childEnv(opts.env ?? {});
  const what = opts.what ?? `${mode} child`;
  const r = spawnSync(process.execPath, [script, mode, JSON.stringify(args)], { encoding: 'utf8', env, maxBuffer: 1 << 24 });
  if (r.error) throw new Error(`${what} could not run or its output was cut: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${what} failed (exit ${r.status ?? r.signal}):\n${r.stderr}`);
  return lastJsonLine<R>(r.stdout, what);
}

/** The best GFLOP/s of our shipped matmul over square and transformer-like shapes (the GEMM peak of this run). */
export function gemmPeak(quick: boolean): number {
  const shapes: [number, number, number][] = quick ? [[512, 512, 512]] : [[1024, 1024, 1024], [2048, 2048, 2048], [2848, 768, 192], [2848, 192, 768]];
  let best = 0;
  for (const [M, N, K] of shapes) {
    T.scope(() => {
      const a = T.randn([M, K]), b = T.randn([K, N]);
      const s = timeit(() => T.scope(() => { T.matmul(a, b); }), { reps: quick ? 1 : 3, minTime: quick ? 0.05 : 0.3 });
      best = Math.max(best, (2 * M * N * K) / s / 1e9);
    });
  }
  return best;
}

/** Result tables and JSON files shaped as DESIGN.md asks (tools/bench/results/<name>.json). */
import { mkdirSync, writeFileSync, renameSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { nativeInfo, setNumThreads } from '@vlmoe/tensor';

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
  return { cpu: c[0]?.model ?? 'unknown', cores: c.length, memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version, native: nativeInfo() };
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
  return [...new Set([nativeInfo().threads, 1])];
}

/**
 * The fastest of `time()` (seconds) over our thread settings, and the setting that gave it
 * (the pool is put back to its default afterwards).
 */
export function bestOverOurThreads(time: () => number): { seconds: number; threads: number } {
  const settings = ourThreadSettings();
  let best = { seconds: Infinity, threads: settings[0]! };
  try {
    for (const t of settings) {
      setNumThreads(t);
      const s = time();
      if (s < best.seconds) best = { seconds: s, threads: t };
    }
  } finally {
    setNumThreads(settings[0]!);
  }
  return best;
}

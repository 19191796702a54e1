/**
 * The PyTorch CPU peers (peers/*.py), run with Debian's python3-torch (`apt-get install
 * python3-torch`; it installs for /usr/bin/python3; `VLMOE_PYTHON` picks another interpreter).
 * Without PyTorch the functions return null and print a note, so the benchmark still runs.
 *
 * A fair peer runs the way its users run it, at its best settings: every peer is run once per
 * setting of PEER_SETTINGS — PyTorch's intra-op threads at its default (no `set_num_threads`
 * call), 1 and 2, each with OpenBLAS's own thread count at its default and at
 * `OPENBLAS_NUM_THREADS=1` — and each timed case keeps its best setting, named in the report.
 * (Debian's build pairs an OpenMP pool with a threaded OpenBLAS: `set_num_threads(2)` on two
 * cores can oversubscribe and run 2–3x slower than the default.)
 */
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { childEnv, lastJsonLine } from './report.js';

const NOT_INSTALLED = 'note: PyTorch is not installed, so the PyTorch column stays empty. Install it with: sudo apt-get install -y python3-torch';

const foundPython = new Map<string, string | null>();
/**
 * The first interpreter of VLMOE_PYTHON, /usr/bin/python3, python3 that imports every one of
 * `modules` (null if none does); remembered per module list.
 */
export function findPython(modules: readonly string[]): string | null {
  const key = modules.join(',');
  if (foundPython.has(key)) return foundPython.get(key)!;
  let found: string | null = null;
  for (const p of [process.env.VLMOE_PYTHON, '/usr/bin/python3', 'python3']) {
    if (!p) continue;
    if (spawnSync(p, ['-c', `import ${modules.join(', ')}`], { encoding: 'utf8' }).status === 0) {
      found = p;
      break;
    }
  }
  foundPython.set(key, found);
  return found;
}

/** The interpreter the PyTorch peers run with (null without PyTorch). */
export function torchPython(): string | null {
  return findPython(['torch']);
}

/** One way to run a peer: PyTorch's intra-op threads (null: its default) and OpenBLAS's (null: its default). */
export interface PeerSetting {
  threads: number | null;
  openblasThreads: number | null;
}

export const PEER_SETTINGS: readonly PeerSetting[] = [null, 1, 2].flatMap((threads) => [null, 1].map((openblasThreads) => ({ threads, openblasThreads })));

/** How a setting reads in a report; `defaultThreads` is what the peer's default turned out to be. */
export function settingLabel(s: PeerSetting, defaultThreads?: number): string {
  const t = s.threads === null ? `default${defaultThreads === undefined ? '' : ` (${defaultThreads})`}` : String(s.threads);
  return `torch threads ${t}, OPENBLAS_NUM_THREADS ${s.openblasThreads ?? 'default'}`;
}

/** One run of a peer script: its last stdout line, parsed. */
export function runPeer(script: string, argv: string[], env: Record<string, string | undefined> = {}): Record<string, unknown> {
  const py = torchPython();
  if (!py) throw new Error(NOT_INSTALLED);
  const path = join(dirname(fileURLToPath(import.meta.url)), '..', 'peers', script);
  const what = `PyTorch peer (${Object.entries(env).map(([k, v]) => `${k}=${v ?? ''} `).join('')}${py} ${path} ${argv.join(' ')})`;
  const r = spawnSync(py, [path, ...argv], { encoding: 'utf8', maxBuffer: 1 << 24, env: childEnv(env) });
  if (r.status !== 0) throw new Error(`${what} failed:\n${r.stderr}`);
  return lastJsonLine<Record<string, unknown>>(r.stdout, what);
}

/** A peer's results over the settings: per timed key its best value and the setting that gave it. */
export interface PeerBest {
  /** key → the lowest value over the settings (times: lower is better). */
  values: Record<string, number>;
  /** key → the label of the setting that gave it. */
  setting: Record<string, string>;
  /** key → the index into `runs` that gave it (to read that run's other fields, e.g. its peak RSS). */
  from: Record<string, number>;
  runs: { setting: PeerSetting; label: string; out: Record<string, unknown> }[];
  version: string;
}

/**
 * The best of each timed key over the runs (lower is better). A key is timed when `timed(key)`
 * says so and every run reports it as a number.
 */
export function bestOverRuns(runs: PeerBest['runs'], timed: (key: string) => boolean): Pick<PeerBest, 'values' | 'setting' | 'from'> {
  const values: Record<string, number> = {}, setting: Record<string, string> = {}, from: Record<string, number> = {};
  if (runs.length === 0) return { values, setting, from };
  for (const key of Object.keys(runs[0]!.out)) {
    if (!timed(key) || !runs.every((r) => typeof r.out[key] === 'number' && Number.isFinite(r.out[key]))) continue;
    let best = 0;
    for (let i = 1; i < runs.length; i++) if ((runs[i]!.out[key] as number) < (runs[best]!.out[key] as number)) best = i;
    values[key] = runs[best]!.out[key] as number;
    setting[key] = runs[best]!.label;
    from[key] = best;
  }
  return { values, setting, from };
}

/** Keys a peer prints that are not times. */
const UNTIMED = new Set(['torch_version', 'torch_threads', 'peak_rss_mb', 'loss', 'ms']);

/**
 * Runs `peers/<script> [...argv] '<json args>'` once per setting (args.threads set to the
 * setting's PyTorch threads) and keeps each timed key's best. Null when PyTorch is missing.
 */
export function runTorchBest(script: string, args: Record<string, unknown>, opts: { argv?: string[]; settings?: readonly PeerSetting[]; timed?: (key: string) => boolean } = {}): PeerBest | null {
  if (!torchPython()) {
    console.log(NOT_INSTALLED);
    return null;
  }
  const runs: PeerBest['runs'] = [];
  for (const setting of opts.settings ?? PEER_SETTINGS) {
    const out = runPeer(script, [...(opts.argv ?? []), JSON.stringify({ ...args, threads: setting.threads })], { OPENBLAS_NUM_THREADS: setting.openblasThreads === null ? undefined : String(setting.openblasThreads) });
    runs.push({ setting, label: settingLabel(setting, typeof out.torch_threads === 'number' ? out.torch_threads : undefined), out });
  }
  const timed = opts.timed ?? ((k: string) => !UNTIMED.has(k));
  return { ...bestOverRuns(runs, timed), runs, version: String(runs[0]!.out.torch_version ?? '') };
}

/**
 * One peer result from several rounds of runTorchBest (rounds interleaved with ours, so a burst
 * of machine noise hurts one round of each side rather than one side): every run of every
 * round is a candidate, each timed key keeps its best. Null when PyTorch is missing.
 */
export function mergePeerRounds(rounds: readonly (PeerBest | null)[]): PeerBest | null {
  const got = rounds.filter((r): r is PeerBest => r !== null);
  if (got.length === 0) return null;
  const runs = got.flatMap((r) => r.runs);
  return { ...bestOverRuns(runs, (k) => !UNTIMED.has(k)), runs, version: got[0]!.version };
}

/** Per setting, one line of a peer's result for `key` (the evidence for "best setting"). */
export function settingLines(peer: PeerBest, key: string, format: (v: number) => string): string[] {
  return peer.runs.map((r) => `  ${r.label}: ${typeof r.out[key] === 'number' ? format(r.out[key] as number) : '—'}${r.label === peer.setting[key] ? '  ← best' : ''}`);
}

/** The peer column's name for a key: the PyTorch version, what ran, and the setting that won. */
export function peerName(peer: PeerBest | null, key: string, what = ''): string {
  if (!peer) return 'PyTorch (not installed)';
  return `PyTorch ${peer.version}${what ? ` ${what}` : ''} [${peer.setting[key] ?? 'no result'}]`;
}

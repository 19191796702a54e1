/**
 * Where a step's time goes, by named range (torch.profiler's `record_function` and
 * `key_averages()`, CPU wall time).
 *
 * - `recordFunction(name, fn)` runs fn inside a named range. Outside `profile()` it only calls
 *   fn (one check), so models can mark their parts unconditionally.
 * - Autograd nodes created inside a range remember it; while profiling, the engine times each
 *   node's backward and books it to `<range> (backward)` (PyTorch links a backward op to the
 *   forward range through its sequence number; here the node carries the name).
 * - `profile(fn)` runs fn with profiling on and returns, per range, calls, self time (the range
 *   minus the ranges run inside it) and total time; time outside every range is `(unmarked)`.
 *   The self times add up to the wall time of fn.
 *
 * Times are host wall-clock (CPU kernels run synchronously; on CUDA a range measures the
 * launch unless the code synchronises).
 */
export interface ProfileRow {
  name: string;
  calls: number;
  /** Milliseconds in this range minus those in ranges (and backward nodes) inside it. */
  selfMs: number;
  /** Milliseconds from entry to exit (summed over calls; nested calls of one name count twice). */
  totalMs: number;
}

export interface ProfileResult<R> {
  result: R;
  /** Rows by self time, largest first; `(unmarked)` holds the time outside every range. */
  rows: ProfileRow[];
  /** Wall-clock milliseconds of fn. */
  totalMs: number;
}

let stats: Map<string, ProfileRow> | null = null;
const open: { name: string; t0: number; inner: number }[] = [];

function book(name: string, totalMs: number, selfMs: number): void {
  let r = stats!.get(name);
  if (!r) stats!.set(name, (r = { name, calls: 0, selfMs: 0, totalMs: 0 }));
  r.calls++;
  r.totalMs += totalMs;
  r.selfMs += selfMs;
  const parent = open[open.length - 1];
  if (parent) parent.inner += totalMs;
}

/** Whether a `profile()` is running. */
export function isProfiling(): boolean {
  return stats !== null;
}

/** The innermost open range while profiling (null otherwise): what a new autograd node remembers. */
export function currentRange(): string | null {
  return stats && open.length ? open[open.length - 1]!.name : null;
}

/** Runs fn inside the range `name` (torch.profiler.record_function); only fn outside `profile()`. */
export function recordFunction<R>(name: string, fn: () => R): R {
  if (!stats) return fn();
  const frame = { name, t0: performance.now(), inner: 0 };
  open.push(frame);
  try {
    return fn();
  } finally {
    open.pop();
    const dt = performance.now() - frame.t0;
    book(name, dt, dt - frame.inner);
  }
}

/** Runs a backward rule, booked to `<range> (backward)` while profiling (the autograd engine calls it). */
export function timeBackward<R>(range: string | null, fn: () => R): R {
  if (!stats) return fn();
  const t0 = performance.now();
  try {
    return fn();
  } finally {
    const dt = performance.now() - t0;
    book(`${range ?? '(unmarked)'} (backward)`, dt, dt);
  }
}

/** Runs fn with profiling on; per-range calls, self and total milliseconds. Profiles do not nest. */
export function profile<R>(fn: () => R): ProfileResult<R> {
  if (stats) throw new Error('profile: a profile is already running (profiles do not nest)');
  const booked = (stats = new Map<string, ProfileRow>());
  const frame = { name: '(unmarked)', t0: performance.now(), inner: 0 };
  open.length = 0;
  open.push(frame);
  let result: R;
  try {
    result = fn();
  } finally {
    open.length = 0;
    stats = null;
  }
  const totalMs = performance.now() - frame.t0;
  booked.set('(unmarked)', { name: '(unmarked)', calls: 1, selfMs: totalMs - frame.inner, totalMs });
  return { result, rows: [...booked.values()].sort((x, y) => y.selfMs - x.selfMs), totalMs };
}

/**
 * Rows merged by family: `family(name)` maps a range (e.g. 'moe.routing (backward)') to the
 * family it counts in (null keeps the name); self times are summed, so the families still add
 * up to the total.
 */
export function profileByFamily(rows: ProfileRow[], family: (name: string) => string | null): ProfileRow[] {
  const out = new Map<string, ProfileRow>();
  for (const r of rows) {
    const name = family(r.name) ?? r.name;
    const m = out.get(name) ?? { name, calls: 0, selfMs: 0, totalMs: 0 };
    m.calls += r.calls;
    m.selfMs += r.selfMs;
    m.totalMs += r.totalMs;
    out.set(name, m);
  }
  return [...out.values()].sort((a, b) => b.selfMs - a.selfMs);
}

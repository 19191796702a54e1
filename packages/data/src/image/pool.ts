/**
 * A pool of worker threads that decode and augment images (`ImagePool`). Several `run` calls
 * may be in flight at once (that is how a loader prefetches): their jobs share one FIFO queue
 * and every worker keeps up to two jobs in hand, so it never idles between messages.
 */
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { transformInto } from './pipeline.js';
import { resolveSpec, type ImageTransformSpec, type ResolvedSpec } from './spec.js';

export interface ImageJob {
  /** The encoded image (JPEG/PNG...). Copied when sent to a worker; never detached. */
  bytes: Uint8Array;
  /** Randomness comes from `Rng.forKey(seed, ...keys)`, e.g. [epoch, row, slot]. */
  keys: number[];
  /** Where the image came from, for error messages, e.g. "coco_train.arrow row 17 column image". */
  source?: string;
}

export interface ImagePoolOptions {
  /** Worker threads (default min(4, cores)); 0 runs the pipeline in this thread (tests, debugging). */
  numWorkers?: number;
  spec: ImageTransformSpec;
  seed: number;
  /** A corrupt image: 'throw' (default) rejects the run naming the source; 'skip' yields null and counts it. */
  onError?: 'throw' | 'skip';
  /** Jobs each worker holds at once (default 2). */
  jobsPerWorker?: number;
}

/** @internal message to a worker */
export interface WorkerRequest {
  id: number;
  bytes: Uint8Array;
  keys: number[];
  target?: { buffer: SharedArrayBuffer; byteOffset: number };
}
/** @internal message from a worker */
export type WorkerReply = { id: number; ok: true; data?: Float32Array } | { id: number; ok: false; message: string };

interface RunState {
  remaining: number;
  /** tasks of this run now in a worker */
  inflight: number;
  done: boolean;
  /** set when the run has failed; it rejects once nothing of it is in flight any more */
  error: Error | null;
  results: (Float32Array | null)[] | null; // null for runInto
  into: { out: Float32Array; offset: number; ok: boolean[]; shared: boolean } | null;
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
}

interface Task {
  id: number;
  index: number;
  job: ImageJob;
  run: RunState;
}

interface Slot {
  worker: Worker | null; // null: in-process
  inflight: Map<number, Task>;
  dead: boolean;
  /** Set by close(): called when the slot's in-flight jobs have all replied. */
  drained?: () => void;
}

const MAX_EXAMPLES = 10;

/** The compiled worker script: next to this module when running from dist/, else the package's dist/image/worker.js. */
export function resolveWorkerScript(): URL {
  const here = new URL('./worker.js', import.meta.url);
  if (here.protocol === 'file:' && existsSync(fileURLToPath(here))) return here;
  const dist = new URL('../../dist/image/worker.js', import.meta.url);
  if (dist.protocol === 'file:' && existsSync(fileURLToPath(dist))) return dist;
  throw new Error(
    `image pool: cannot find the worker script (looked for ${fileURLToPath(here)} and ${fileURLToPath(dist)}). ` +
      'Worker threads cannot load TypeScript sources: build @vlmoe/data first (npm run build), or use numWorkers: 0.',
  );
}

function describe(task: Task): string {
  return task.job.source ?? `job ${task.index}`;
}

export class ImagePool {
  readonly numWorkers: number;
  readonly spec: ResolvedSpec;
  readonly seed: number;
  readonly onError: 'throw' | 'skip';
  /** Images skipped with onError 'skip': how many, and the first few error messages. */
  readonly skipped: { count: number; examples: string[] } = { count: 0, examples: [] };

  private readonly plane: number;
  private readonly perSlot: number;
  private readonly slots: Slot[] = [];
  private readonly queue: Task[] = [];
  private queueHead = 0;
  private nextId = 1;
  private closed = false;
  private readonly workerUrl: URL | null;
  /** Workers that died in a row without finishing a job (a broken install would respawn forever). */
  private deathsInARow = 0;
  private lastDeath = '';

  constructor(options: ImagePoolOptions) {
    this.spec = resolveSpec(options.spec);
    this.seed = options.seed;
    if (!Number.isSafeInteger(this.seed)) throw new TypeError(`image pool: seed must be a safe integer, got ${this.seed}`);
    this.onError = options.onError ?? 'throw';
    const n = options.numWorkers ?? Math.min(4, availableParallelism());
    if (!Number.isInteger(n) || n < 0) throw new RangeError(`image pool: numWorkers must be an integer >= 0, got ${n}`);
    this.numWorkers = n;
    this.perSlot = Math.max(1, options.jobsPerWorker ?? 2);
    this.plane = 3 * this.spec.size * this.spec.size;
    if (n === 0) {
      this.workerUrl = null;
      this.slots.push({ worker: null, inflight: new Map(), dead: false });
    } else {
      this.workerUrl = resolveWorkerScript();
      for (let i = 0; i < n; i++) this.slots.push(this.spawn());
    }
  }

  /** Output floats per image: 3·size·size. */
  get imageLength(): number {
    return this.plane;
  }

  /** Human-readable skip report, e.g. for the end of an epoch. */
  skipReport(): string {
    if (this.skipped.count === 0) return 'image pool: no images skipped';
    return `image pool: skipped ${this.skipped.count} image(s) that could not be decoded; first: ${this.skipped.examples.join('; ')}`;
  }

  /**
   * Processes a batch; resolves to one `[3, size, size]` Float32Array per job, in job order.
   * With onError 'skip' a failed image yields null (and is counted in `skipped`); with 'throw'
   * the promise rejects with "image pool: cannot decode <source>: <decoder message>".
   */
  run(jobs: readonly ImageJob[]): Promise<(Float32Array | null)[]> {
    return this.submit(jobs, null) as Promise<(Float32Array | null)[]>;
  }

  /**
   * Like `run`, but writes image i to `out[offset + i·3·size·size ...]` (zeros for a skipped
   * image) and resolves to per-job success flags. When `out` is backed by a SharedArrayBuffer the
   * workers write into it directly (no copy at all).
   */
  runInto(jobs: readonly ImageJob[], out: Float32Array, offset = 0): Promise<boolean[]> {
    if (offset < 0 || offset + jobs.length * this.plane > out.length) {
      return Promise.reject(new RangeError(`image pool: runInto needs ${jobs.length * this.plane} floats from offset ${offset}, out has ${out.length}`));
    }
    const shared = typeof SharedArrayBuffer !== 'undefined' && out.buffer instanceof SharedArrayBuffer;
    return this.submit(jobs, { out, offset, ok: new Array<boolean>(jobs.length).fill(false), shared }) as Promise<boolean[]>;
  }

  /**
   * Stops the workers; pending runs reject. Jobs already inside a worker are let finish first
   * (up to 10 s): terminating a thread while libvips works on its behalf can crash the whole
   * process. Safe to call twice.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const err = new Error('image pool: closed');
    for (let i = this.queueHead; i < this.queue.length; i++) this.fail(this.queue[i]!.run, err);
    this.queue.length = 0;
    this.queueHead = 0;
    await Promise.all(
      this.slots.map((s) =>
        s.worker && !s.dead && s.inflight.size > 0
          ? new Promise<void>((resolve) => {
              const timer = setTimeout(resolve, 10_000);
              timer.unref();
              s.drained = () => {
                clearTimeout(timer);
                resolve();
              };
            })
          : null,
      ),
    );
    const terms: Promise<unknown>[] = [];
    for (const s of this.slots) {
      for (const t of s.inflight.values()) {
        t.run.inflight--;
        this.fail(t.run, err);
      }
      s.inflight.clear();
      s.dead = true;
      if (s.worker) terms.push(s.worker.terminate());
    }
    await Promise.all(terms);
  }

  private submit(jobs: readonly ImageJob[], into: RunState['into']): Promise<unknown> {
    if (this.closed) return Promise.reject(new Error('image pool: closed'));
    return new Promise((resolve, reject) => {
      const run: RunState = { remaining: jobs.length, inflight: 0, done: false, error: null, results: into ? null : new Array(jobs.length).fill(null), into, resolve, reject };
      if (jobs.length === 0) {
        run.done = true;
        resolve(into ? into.ok : run.results);
        return;
      }
      for (let i = 0; i < jobs.length; i++) {
        const job = jobs[i]!;
        if (!(job.bytes instanceof Uint8Array)) {
          this.fail(run, new TypeError(`image pool: job ${i} (${job.source ?? 'no source'}) has no bytes`));
          return;
        }
        if (!Array.isArray(job.keys) || !job.keys.every((k) => Number.isSafeInteger(k))) {
          this.fail(run, new TypeError(`image pool: job ${i} (${job.source ?? 'no source'}): keys must be an array of safe integers`));
          return;
        }
        this.queue.push({ id: this.nextId++, index: i, job, run });
      }
      this.pump();
    });
  }

  private spawn(): Slot {
    // The parent's flags are not passed on: some (--input-type, --eval...) make a worker fail to start.
    const execArgv = process.execArgv.filter((a) => a === '--enable-source-maps');
    const worker = new Worker(this.workerUrl!, { workerData: { spec: this.spec, seed: this.seed }, execArgv });
    const slot: Slot = { worker, inflight: new Map(), dead: false };
    worker.unref();
    worker.on('message', (msg: WorkerReply) => this.onReply(slot, msg));
    const onDeath = (why: string) => {
      if (slot.dead) return;
      slot.dead = true;
      const err = new Error(`image pool: worker failed: ${why}`);
      this.lastDeath = why;
      for (const t of slot.inflight.values()) {
        t.run.inflight--;
        this.fail(t.run, err);
      }
      slot.inflight.clear();
      slot.drained?.();
      const k = this.slots.indexOf(slot);
      if (this.closed || k < 0) return;
      if (++this.deathsInARow > 2 * this.slots.length + 2) {
        // workers cannot start: fail everything queued instead of respawning forever
        for (let i = this.queueHead; i < this.queue.length; i++) this.fail(this.queue[i]!.run, err);
        this.queue.length = 0;
        this.queueHead = 0;
        return;
      }
      this.slots[k] = this.spawn();
      this.pump();
    };
    worker.on('error', (e) => onDeath(e instanceof Error ? e.message : String(e)));
    worker.on('exit', (code) => onDeath(`exited with code ${code}`));
    return slot;
  }

  private pump(): void {
    if (this.queueHead < this.queue.length && this.slots.every((s) => s.dead)) {
      const err = new Error(`image pool: no working worker threads (last failure: ${this.lastDeath})`);
      for (let i = this.queueHead; i < this.queue.length; i++) this.fail(this.queue[i]!.run, err);
      this.queue.length = 0;
      this.queueHead = 0;
      return;
    }
    while (this.queueHead < this.queue.length) {
      let best: Slot | null = null;
      for (const s of this.slots) if (!s.dead && s.inflight.size < this.perSlot && (!best || s.inflight.size < best.inflight.size)) best = s;
      if (!best) break;
      const task = this.queue[this.queueHead++]!;
      if (task.run.done || task.run.error) continue; // its run already failed
      this.dispatch(best, task);
    }
    if (this.queueHead > 1024 && this.queueHead * 2 > this.queue.length) {
      this.queue.splice(0, this.queueHead);
      this.queueHead = 0;
    }
  }

  private dispatch(slot: Slot, task: Task): void {
    slot.inflight.set(task.id, task);
    task.run.inflight++;
    const into = task.run.into;
    if (!slot.worker) {
      const out = into ? into.out : new Float32Array(this.plane);
      const off = into ? into.offset + task.index * this.plane : 0;
      transformInto(task.job.bytes, this.spec, this.seed, task.job.keys, out, off).then(
        () => this.onReply(slot, { id: task.id, ok: true, data: into ? undefined : out }, true),
        (e: unknown) => this.onReply(slot, { id: task.id, ok: false, message: e instanceof Error ? e.message : String(e) }),
      );
      return;
    }
    if (slot.inflight.size === 1) slot.worker.ref();
    const bytes = task.job.bytes.slice(); // a tight copy: posting a view would clone its whole backing buffer
    const msg: WorkerRequest = { id: task.id, bytes, keys: task.job.keys };
    if (into && into.shared) msg.target = { buffer: into.out.buffer as SharedArrayBuffer, byteOffset: into.out.byteOffset + (into.offset + task.index * this.plane) * 4 };
    slot.worker.postMessage(msg, [bytes.buffer]);
  }

  private onReply(slot: Slot, msg: WorkerReply, inPlace = false): void {
    const task = slot.inflight.get(msg.id);
    if (!task) return;
    slot.inflight.delete(msg.id);
    if (slot.worker && slot.inflight.size === 0) {
      slot.worker.unref();
      slot.drained?.();
    }
    this.deathsInARow = 0;
    const run = task.run;
    run.inflight--;
    if (!run.done && !run.error) {
      if (msg.ok) {
        if (run.results) run.results[task.index] = msg.data ?? null;
        else {
          const into = run.into!;
          if (msg.data && !inPlace) into.out.set(msg.data, into.offset + task.index * this.plane);
          into.ok[task.index] = true;
        }
        this.finishOne(run);
      } else {
        const message = `image pool: cannot decode ${describe(task)}: ${msg.message}`;
        if (this.onError === 'skip') {
          this.skipped.count++;
          if (this.skipped.examples.length < MAX_EXAMPLES) this.skipped.examples.push(message);
          if (run.into) run.into.out.fill(0, run.into.offset + task.index * this.plane, run.into.offset + (task.index + 1) * this.plane);
          this.finishOne(run);
        } else {
          this.fail(run, new Error(message));
        }
      }
    }
    this.settleFailed(run);
    this.pump();
  }

  private finishOne(run: RunState): void {
    if (--run.remaining === 0 && !run.done && !run.error) {
      run.done = true;
      run.resolve(run.into ? run.into.ok : run.results);
    }
  }

  /**
   * Marks a run failed. It rejects as soon as none of its jobs is in a worker any more, so that
   * with runInto no job of a rejected run can still write into the caller's buffer.
   */
  private fail(run: RunState, err: Error): void {
    if (run.done) return;
    run.error ??= err;
    this.settleFailed(run);
  }

  private settleFailed(run: RunState): void {
    if (run.error && !run.done && run.inflight <= 0) {
      run.done = true;
      run.reject(run.error);
    }
  }
}

/**
 * Gradient reduction overlapped with backward (DDP's Reducer, DeepSpeed's overlap_comm):
 * each parameter set's gradients are cut into fixed buckets of about `bucketElements`
 * elements in reverse parameter order (roughly the order backward completes them). A
 * post-accumulate-grad hook counts a bucket's finished gradients; when a bucket is full and
 * every earlier bucket of its set has been launched, its gradients are flattened and an async
 * collective is queued on the communication thread, while backward continues. After
 * backward, buckets still waiting (parameters without a gradient count as zeros) are
 * launched in order; `wait` completes them.
 *
 * Two modes:
 * - all-reduce (data parallel, ZeRO-1): `wait` scales the sums and writes them back into
 *   every parameter's `.grad`.
 * - reduce-scatter (ZeRO-2): a bucket is a contiguous range of the set's flat parameter
 *   space; it is reduce-scattered with uneven blocks, so each rank receives only the part
 *   that falls in its partition, and the bucket's `.grad`s are freed at launch (DeepSpeed
 *   stage 2: a rank never holds the whole gradient after its bucket is reduced). `wait`
 *   returns this rank's partition gradient.
 */
import * as T from '@vlmoe/tensor';
import type { ProcessGroup, Work } from './process_group.js';

export interface ReducedSet {
  params: T.nn.Parameter[];
  group: ProcessGroup;
  /** Reduce-scatter mode: params[i] starts at offsets[i] of the flat space; `chunk` elements per rank. */
  offsets?: number[];
  chunk?: number;
}

interface Bucket {
  params: T.nn.Parameter[];
  remaining: number;
  /** Reduce-scatter mode: [lo, hi) of the flat space, and this rank's part [mine, mine + out.numel). */
  lo: number;
  hi: number;
  mine: number;
  flat: T.Tensor | null;
  out: T.Tensor | null;
  work: Work | null;
}

interface SetBuckets {
  set: ReducedSet;
  buckets: Bucket[];
  next: number;
  bucketOf: Map<T.nn.Parameter, Bucket>;
}

export class OverlappedReducer {
  private readonly sets: SetBuckets[];
  private readonly removers: (() => void)[] = [];
  private active = false;
  private readonly seen = new Set<T.nn.Parameter>();

  /** `scatter`: reduce-scatter mode (every set needs `offsets` and `chunk`). */
  constructor(sets: readonly ReducedSet[], bucketElements: number, private readonly scatter = false) {
    this.sets = sets.map((set) => {
      if (scatter && (!set.offsets || !set.chunk)) throw new Error('OverlappedReducer: reduce-scatter mode needs the sets\' flat offsets and partition size');
      const buckets: Bucket[] = [];
      let cur: Bucket | null = null, size = 0;
      for (let i = set.params.length - 1; i >= 0; i--) {
        const p = set.params[i]!;
        if (!cur || size >= bucketElements) {
          cur = { params: [], remaining: 0, lo: Infinity, hi: 0, mine: 0, flat: null, out: null, work: null };
          buckets.push(cur);
          size = 0;
        }
        cur.params.push(p);
        size += p.numel;
        if (set.offsets) {
          cur.lo = Math.min(cur.lo, set.offsets[i]!);
          cur.hi = Math.max(cur.hi, set.offsets[i]! + p.numel);
        }
      }
      const sb: SetBuckets = { set, buckets, next: 0, bucketOf: new Map() };
      for (const b of buckets) for (const p of b.params) sb.bucketOf.set(p, b);
      for (const p of set.params) this.removers.push(p.registerPostAccumulateGradHook(() => this.ready(sb, p)));
      return sb;
    });
  }

  /** Buckets per set (for tests and logs). */
  get bucketCounts(): number[] {
    return this.sets.map((s) => s.buckets.length);
  }

  /** Before the accumulation boundary's backward. */
  begin(): void {
    if (this.sets.some((s) => s.buckets.some((b) => b.work))) throw new Error('engine: a backward started before the previous step() reduced its gradients');
    this.active = true;
    this.seen.clear();
    for (const s of this.sets) {
      s.next = 0;
      for (const b of s.buckets) b.remaining = b.params.length;
    }
  }

  private ready(s: SetBuckets, p: T.nn.Parameter): void {
    if (!this.active || this.seen.has(p)) return;
    this.seen.add(p);
    s.bucketOf.get(p)!.remaining--;
    while (s.next < s.buckets.length && s.buckets[s.next]!.remaining === 0) this.launch(s, s.buckets[s.next++]!);
  }

  private launch(s: SetBuckets, b: Bucket): void {
    T.noGrad(() => {
      const grads = (ps: T.nn.Parameter[]) => ps.map((p) => (p.grad ?? T.zeros(p.shape.slice(), { dtype: p.dtype, device: p.device })).reshape(-1));
      if (!this.scatter) {
        b.flat = T.keep(T.contiguous(T.cat(grads(b.params), 0)));
        b.work = s.set.group.allReduce(b.flat, 'sum', { async: true });
        return;
      }
      // the bucket's range of the flat space in ascending order, cut at the partition borders
      b.flat = T.keep(T.contiguous(T.cat(grads([...b.params].reverse()), 0)));
      for (const p of b.params) p.zeroGrad();
      const { group } = s.set, chunk = s.set.chunk!;
      const pieces: T.Tensor[] = [];
      for (let r = 0; r < group.size; r++) {
        const lo = Math.max(b.lo, r * chunk), hi = Math.min(b.hi, (r + 1) * chunk);
        const len = Math.max(0, hi - lo);
        pieces.push(b.flat.narrow(0, Math.min(Math.max(lo, b.lo), b.hi) - b.lo, len));
        if (r === group.rank) b.mine = lo;
      }
      b.out = T.keep(T.empty([pieces[group.rank]!.numel], { dtype: b.flat.dtype, device: b.flat.device }));
      b.work = group.reduceScatter(b.out, pieces, 'sum', { async: true });
    });
  }

  /** After backward: launches, in order, the buckets still waiting for gradients. */
  finishBackward(): void {
    if (!this.active) return;
    this.active = false;
    for (const s of this.sets) while (s.next < s.buckets.length) this.launch(s, s.buckets[s.next++]!);
  }

  /**
   * Completes the set's collectives. All-reduce mode: writes `scale ·` the sums into the
   * gradients, returns null. Reduce-scatter mode: returns `scale ·` this rank's partition of
   * the summed flat gradient ([chunk], zeros where no parameter lies).
   */
  wait(set: ReducedSet, scale: number): T.Tensor | null {
    const s = this.sets.find((x) => x.set.params === set.params);
    if (!s) throw new Error('engine: no overlapped buckets for this parameter set');
    return T.noGrad(() => {
      const part = this.scatter ? T.zeros([set.chunk!], { dtype: set.params[0]!.dtype, device: set.params[0]!.device }) : null;
      const base = set.group.rank * (set.chunk ?? 0);
      for (const b of s.buckets) {
        if (!b.work) throw new Error('engine: step() without a backward on the accumulation boundary');
        b.work.wait();
        if (part) {
          const out = b.out!;
          if (out.numel) T.copy_(part.narrow(0, b.mine - base, out.numel), T.mul_(out, scale));
          out.dispose();
          b.out = null;
        } else {
          const flat = b.flat!;
          T.mul_(flat, scale);
          let off = 0;
          for (const p of b.params) {
            const g = flat.narrow(0, off, p.numel).reshape(...p.shape);
            if (p.grad) T.copy_(p.grad, g);
            else p.grad = T.keep(T.clone(g));
            off += p.numel;
          }
        }
        b.flat!.dispose();
        b.flat = null;
        b.work = null;
      }
      return part;
    });
  }

  dispose(): void {
    for (const r of this.removers) r();
    this.removers.length = 0;
  }
}

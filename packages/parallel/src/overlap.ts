/**
 * Gradient all-reduce overlapped with backward (DDP's Reducer, DeepSpeed's overlap_comm):
 * each parameter set's gradients are cut into fixed buckets of about `bucketElements`
 * elements in reverse parameter order (roughly the order backward completes them). A
 * post-accumulate-grad hook counts a bucket's finished gradients; when a bucket is full and
 * every earlier bucket of its set has been launched, its gradients are flattened and an async
 * all-reduce is queued on the communication thread, while backward continues. After
 * backward, buckets still waiting (parameters without a gradient count as zeros) are
 * launched in order; `wait` completes them, scales and writes the gradients back.
 */
import * as T from '@vlmoe/tensor';
import type { ProcessGroup, Work } from './process_group.js';

export interface ReducedSet {
  params: T.nn.Parameter[];
  group: ProcessGroup;
}

interface Bucket {
  params: T.nn.Parameter[];
  remaining: number;
  flat: T.Tensor | null;
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

  constructor(sets: readonly ReducedSet[], bucketElements: number) {
    this.sets = sets.map((set) => {
      const buckets: Bucket[] = [];
      let cur: Bucket | null = null, size = 0;
      for (const p of [...set.params].reverse()) {
        if (!cur || size >= bucketElements) {
          cur = { params: [], remaining: 0, flat: null, work: null };
          buckets.push(cur);
          size = 0;
        }
        cur.params.push(p);
        size += p.numel;
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
      const flat = T.cat(b.params.map((p) => (p.grad ?? T.zeros(p.shape.slice(), { dtype: p.dtype })).reshape(-1)), 0);
      b.flat = T.keep(T.contiguous(flat));
      b.work = s.set.group.allReduce(b.flat, 'sum', { async: true });
    });
  }

  /** After backward: launches, in order, the buckets still waiting for gradients. */
  finishBackward(): void {
    if (!this.active) return;
    this.active = false;
    for (const s of this.sets) while (s.next < s.buckets.length) this.launch(s, s.buckets[s.next++]!);
  }

  /** Completes the set's all-reduces and writes `scale ·` the sums into the gradients. */
  wait(set: ReducedSet, scale: number): void {
    const s = this.sets.find((x) => x.set.params === set.params);
    if (!s) throw new Error('engine: no overlapped buckets for this parameter set');
    T.noGrad(() => {
      for (const b of s.buckets) {
        if (!b.work) throw new Error('engine: step() without a backward on the accumulation boundary');
        b.work.wait();
        const flat = b.flat!;
        T.mul_(flat, scale);
        let off = 0;
        for (const p of b.params) {
          const g = flat.narrow(0, off, p.numel).reshape(...p.shape);
          if (p.grad) T.copy_(p.grad, g);
          else p.grad = T.keep(T.clone(g));
          off += p.numel;
        }
        flat.dispose();
        b.flat = null;
        b.work = null;
      }
    });
  }

  dispose(): void {
    for (const r of this.removers) r();
    this.removers.length = 0;
  }
}

/**
 * One rank of `npm run bench -- comm` (started by vlmoe-run or mpirun): times allReduce and
 * allToAllSingle of float32 buffers from 1 KiB to the largest size, and (mode 'train') a
 * data-parallel training step; rank 0 prints one JSON line.
 */
import * as T from '@vlmoe/tensor';
import { initProcessGroup, initialize } from '@vlmoe/parallel';

const mode = process.argv[2] ?? 'collectives';
const pg = initProcessGroup();
const quick = process.env.VLMOE_BENCH_QUICK === '1';

function time(fn: () => void, minTime: number): number {
  fn();
  pg.barrier();
  // every rank runs the same number of repetitions: rank 0 decides from a probe
  const t0 = performance.now();
  fn();
  const probe = T.tensor([performance.now() - t0], { dtype: 'float64' });
  pg.allReduce(probe, 'max');
  const reps = Math.max(1, Math.min(1000, Math.ceil((minTime * 1000) / Math.max(probe.item(), 1e-3))));
  pg.barrier();
  const t1 = performance.now();
  for (let i = 0; i < reps; i++) fn();
  pg.barrier();
  return (performance.now() - t1) / 1000 / reps;
}

if (mode === 'collectives') {
  const P = pg.size;
  const maxBytes = quick ? 1 << 20 : 64 << 20;
  const rows: { bytes: number; allReduce: number; allToAll: number }[] = [];
  for (let bytes = 1024; bytes <= maxBytes; bytes *= 4) {
    const n = bytes / 4;
    const x = T.ones([n]);
    const out = T.empty([n]);
    const minTime = quick ? 0.02 : 0.15;
    const ar = time(() => pg.allReduce(x, 'sum'), minTime);
    const nn = Math.floor(n / P) * P;
    const a = x.narrow(0, 0, nn), b = out.narrow(0, 0, nn);
    const a2a = time(() => pg.allToAllSingle(b, a), minTime);
    // bus bandwidth as nccl-tests defines it (GB/s)
    rows.push({ bytes, allReduce: ((bytes / ar) * (2 * (P - 1)) / P) / 1e9, allToAll: (((nn * 4) / a2a) * (P - 1) / P) / 1e9 });
    x.dispose();
    out.dispose();
  }
  if (pg.rank === 0) console.log(JSON.stringify({ backend: pg.backend, ranks: P, rows }));
} else {
  // data-parallel training of the benchmark transformer's shape (smaller in quick mode)
  const d = 256, heads = 4, seq = quick ? 32 : 128, blocks = quick ? 1 : 4, global = 16;
  T.setNumThreads(Number(process.env.BENCH_THREADS ?? 1));
  const gen = new T.Generator(0);
  class Block extends T.nn.Module {
    ln1 = new T.nn.LayerNorm(d);
    attn = new T.nn.MultiheadSelfAttention(d, heads, { qkvBias: 'all', generator: gen });
    ln2 = new T.nn.LayerNorm(d);
    mlp = new T.nn.FeedForward(d, 4 * d, { generator: gen });
    forward(x: T.Tensor): T.Tensor {
      const h = x.add(this.attn.forward(this.ln1.forward(x)));
      return h.add(this.mlp.forward(this.ln2.forward(h)));
    }
  }
  const model = new T.nn.Sequential(...Array.from({ length: blocks }, () => new Block()));
  const { engine } = initialize({ model, config: { train_batch_size: global, optimizer: { type: 'AdamW', params: { lr: 1e-4 } }, zero_optimization: JSON.parse(process.env.BENCH_ZERO ?? '{}') as object }, processGroup: pg });
  const micro = global / pg.size;
  const x = T.randn([micro, seq, d], { generator: gen }).keep(), y = T.randn([micro, seq, d], { generator: gen }).keep();
  const step = () => T.scope(() => {
    engine.backward(T.nn.mseLoss(engine.forward<[T.Tensor], T.Tensor>(x), y));
    engine.step();
  });
  const s = time(step, quick ? 0.2 : 3);
  if (pg.rank === 0) console.log(JSON.stringify({ backend: pg.backend, ranks: pg.size, threadsPerRank: Number(process.env.BENCH_THREADS ?? 1), samplesPerSec: global / s }));
}
pg.destroy();

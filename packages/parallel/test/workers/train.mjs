// Run by vlmoe-run in the engine tests. CONFIG (JSON env) is the DeepSpeed config; the model
// is a small MLP, the global batch is the same for every world size. Each rank first trains
// the same model alone on the whole batch (the reference), then through the engine on its
// share, and compares the parameters after STEPS optimiser steps. Prints a JSON summary.
import * as T from '@vlmoe/tensor';
import { initProcessGroup, initialize, zeroInit } from '../../dist/index.js';

const pg = initProcessGroup();
const W = pg.size, me = pg.rank;
const cfg = JSON.parse(process.env.CONFIG);
const STEPS = Number(process.env.STEPS ?? 5);
// 15 hidden units: parameters of 15 elements do not split evenly over 2 or 4 ranks (ZeRO-3 pads them)
const GLOBAL = 8, IN = 8, HIDDEN = 15, OUT = 4;
const gas = cfg.gradient_accumulation_steps ?? 1;

// Probe: an identity between the layers that records, in forward and in backward, whether the
// linears' full weights are held there (ZeRO-3 must hold neither: the first was freed after its
// forward / its gradient, the second is gathered only for its own forward / backward).
const probes = [];
class Probe extends T.nn.Module {
  constructor(seq) {
    super();
    this._seq = seq;
  }
  held() {
    return [this._seq[0].weight, this._seq[3].weight].filter((w) => !w.storage.dataReleased).length;
  }
  forward(x) {
    probes.push(['forward', this.held()]);
    return T.customOp('probe', [x], () => x.detach(), (g) => (probes.push(['backward', this.held()]), [g]));
  }
}
const model = () => {
  const layers = [new T.nn.Linear(IN, HIDDEN, { generator: new T.Generator(1) }), new T.nn.GELU()];
  layers.push(new Probe(layers), new T.nn.Linear(HIDDEN, OUT, { generator: new T.Generator(2) }));
  return new T.nn.Sequential(...layers);
};
const batch = (step) => ({
  x: T.randn([GLOBAL, IN], { generator: new T.Generator(1000 + step) }),
  y: T.randn([GLOBAL, OUT], { generator: new T.Generator(2000 + step) }),
});
const lossOf = (m, x, y) => T.nn.mseLoss(m.forward(x), y);
// bf16 / fp16: the reference multiplies in that dtype too (T.autocast), without loss scaling
const mixed = cfg.bf16?.enabled ? 'bfloat16' : cfg.fp16?.enabled ? 'float16' : null;

// reference: one process, the whole global batch, same optimiser and clipping
const ref = model();
const op = cfg.optimizer.params;
const opt = cfg.optimizer.type === 'SGD'
  ? new T.optim.SGD(ref.parameters(), { lr: op.lr, momentum: op.momentum ?? 0, weightDecay: op.weight_decay ?? 0 })
  : new T.optim.AdamW(ref.parameters(), { lr: op.lr, weightDecay: op.weight_decay });
for (let s = 0; s < STEPS; s++) {
  T.scope(() => {
    opt.zeroGrad();
    const { x, y } = batch(s);
    T.autocast(mixed, () => lossOf(ref, x, y).backward());
    if (cfg.gradient_clipping) T.optim.clipGradNorm(ref.parameters(), cfg.gradient_clipping);
    opt.step();
  });
}

// the engine: rank r's share of each global batch, in gas micro batches
// ZERO_INIT=<dir> (or 'ram'): the engine's model is built under zeroInit (its parameters recorded, not made; those made whole
// go to files in <dir>); the memory it took meanwhile is reported, and how many parameters were ever made whole
let built, buildLive = 0, buildFile = 0, madeWhole = 0;
if (process.env.ZERO_INIT) {
  const before = T.memory().cpu.live, fileBefore = T.memory().cpu.file;
  T.resetPeakMemory();
  built = zeroInit(process.env.ZERO_INIT === 'ram' ? {} : { nvmePath: process.env.ZERO_INIT }, model);
  buildLive = T.memory().cpu.peak - before;
  buildFile = T.memory().cpu.file - fileBefore;
  // count the parameters whose whole tensor gets made (their storage allocated) from now on
  for (const p of built.parameters()) {
    const pend = p.storage.pending;
    if (!pend) continue;
    const allocate = pend.allocate.bind(pend);
    pend.allocate = (n) => (madeWhole++, allocate(n));
  }
} else built = model();
const { engine } = initialize({ model: built, config: cfg, processGroup: pg });
const fileAfterInit = T.memory().cpu.file;
const micro = GLOBAL / W / gas;
let stateBytes = 0, gradsHeld = -1, fileBytes = -1, partitionBytes = -1;
for (let s = 0; s < STEPS; s++) {
  const { x, y } = batch(s);
  for (let m = 0; m < gas; m++) {
    T.scope(() => {
      const lo = me * (GLOBAL / W) + m * micro;
      engine.backward(T.nn.mseLoss(engine.forward(x.narrow(0, lo, micro)), y.narrow(0, lo, micro)));
      // gradient elements the module still holds after the first boundary backward
      if (s === 0 && m === gas - 1) gradsHeld = engine.module.parameters().reduce((n, p) => n + (p.grad ? p.numel : 0), 0);
      engine.step();
    });
  }
  if (s === 0) {
    stateBytes = engine.optimizerStateBytes();
    fileBytes = T.memory().cpu.file;
    partitionBytes = engine.zero.partitionBytes();
  }
}
let maxDiff = 0;
const a = ref.parameters(), b = engine.module.parameters();
// parameters whose full tensor is freed between steps (ZeRO-3)
const released = b.filter((p) => p.storage.dataReleased).length;
engine.gatheredParameters(() => a.forEach((p, i) => {
  const x = p.dataSync(), y = b[i].dataSync();
  for (let j = 0; j < x.length; j++) maxDiff = Math.max(maxDiff, Math.abs(x[j] - y[j]) / (1 + Math.abs(x[j])));
}));
const stillReleased = b.filter((p) => p.storage.dataReleased).length;
const numel = a.reduce((n, p) => n + p.numel, 0);
const steps = engine.globalSteps;
const buckets = engine.overlapBuckets;
engine.destroy();
const freed = engine.optimizerStateBytes() === 0 && b.every((p) => p.disposed) && T.memory().cpu.file === 0;
if (!freed) console.error("not freed", engine.optimizerStateBytes(), b.every((p) => p.disposed), T.memory().cpu);
// the engine's probe records (the reference's come first: it ran the same model alone)
const engineProbes = probes.slice(2 * STEPS);
console.log(JSON.stringify({ rank: me, maxDiff, stateBytes, numel, steps, freed, buckets, gradsHeld, skipped: engine.skippedSteps, released, stillReleased, params: b.length, probes: engineProbes, prefetched: engine.zero.prefetchedElements, fileBytes, partitionBytes, buildLive, buildFile, fileAfterInit, madeWhole }));
pg.destroy();

// Run by vlmoe-run in the tensor-parallel engine tests. CONFIG (JSON env) is the DeepSpeed
// config (with tensor_parallel_size). The model is a small pre-LN transformer language model —
// word embedding, self-attention, FFN, LM head, cross-entropy — written with plain T.nn layers;
// it splits its embedding and head itself (setTensorParallelGroup: vocab-parallel) and the
// engine splits its attention and FFN. Each rank first trains the same model alone on the
// whole global batch (the reference), then through the engine on its data-parallel share;
// prints the largest relative differences of the per-step losses, the gradient norms and the
// parameters in the global layout after STEPS optimiser steps. SAVE_DIR (env): write a
// checkpoint at the end; LOAD_DIR: start from one (at its step) and train up to STEPS.
import * as T from '@vlmoe/tensor';
import { initProcessGroup, initialize, VocabParallelEmbedding, ColumnParallelLinear, vocabParallelCrossEntropy } from '../../dist/index.js';

const world = initProcessGroup();
const cfg = JSON.parse(process.env.CONFIG);
const STEPS = Number(process.env.STEPS ?? 4);
const GLOBAL = 8, L = 6, D = 16, H = 4, V = 24;

class TinyLM extends T.nn.Module {
  constructor() {
    super();
    const g = new T.Generator(3);
    this.embed = new T.nn.Embedding(V, D, { generator: g });
    this.norm1 = new T.nn.LayerNorm(D);
    this.attn = new T.nn.MultiheadSelfAttention(D, H, { qkvBias: 'qv', generator: g });
    this.norm2 = new T.nn.LayerNorm(D);
    this.ffn = new T.nn.FeedForward(D, 4 * D, { generator: g });
    this.head = new T.nn.Linear(D, V, { generator: g });
    // VLMo's q/v biases start at zero; give them values so their split is exercised
    T.noGrad(() => {
      T.copy_(this.attn.qBias, T.randn([D], { generator: g, std: 0.1 }));
      T.copy_(this.attn.vBias, T.randn([D], { generator: g, std: 0.1 }));
    });
    this._tp = null;
  }
  setTensorParallelGroup(tp) {
    this.embed = VocabParallelEmbedding.fromDense(this.embed, tp);
    this.head = ColumnParallelLinear.fromDense(this.head, tp);
    this._tp = tp;
  }
  forward(ids, targets) {
    let h = this.embed.forward(ids);
    h = T.add(h, this.attn.forward(this.norm1.forward(h)));
    h = T.add(h, this.ffn.forward(this.norm2.forward(h)));
    const logits = this.head.forward(h);
    return this._tp ? vocabParallelCrossEntropy(this._tp, logits, targets) : T.crossEntropy(logits.reshape(-1, V), targets.reshape(-1));
  }
}

const batch = (step) => {
  const g = new T.Generator(1000 + step);
  return { ids: T.randint(0, V, [GLOBAL, L], { generator: g, dtype: 'int64' }), targets: T.randint(0, V, [GLOBAL, L], { generator: g, dtype: 'int64' }) };
};
const op = cfg.optimizer.params;

// reference: one process, the whole global batch
const ref = new TinyLM();
const opt = new T.optim.AdamW(ref.parameters(), { lr: op.lr, weightDecay: op.weight_decay ?? 0 });
const refLoss = [], refNorms = [];
for (let s = 0; s < STEPS; s++) {
  T.scope(() => {
    opt.zeroGrad();
    const { ids, targets } = batch(s);
    const loss = ref.forward(ids, targets);
    refLoss.push(loss.item());
    loss.backward();
    refNorms.push(T.optim.clipGradNorm(ref.parameters(), cfg.gradient_clipping ?? Infinity));
    opt.step();
  });
}

const { engine } = initialize({ model: new TinyLM(), config: cfg, processGroup: world });
const dp = engine.groups.dataParallel;
// resume (LOAD_DIR): the checkpoint's step count is where this run starts
const start = process.env.LOAD_DIR ? (engine.loadCheckpoint(process.env.LOAD_DIR), engine.globalSteps) : 0;
const gas = engine.config.gradAccum;
const share = GLOBAL / dp.size, micro = share / gas;
const loss = [];
const norms = [];
for (let s = start; s < STEPS; s++) {
  const { ids, targets } = batch(s);
  let sum = 0;
  for (let m = 0; m < gas; m++) {
    T.scope(() => {
      const lo = dp.rank * share + m * micro;
      const l = engine.forward(ids.narrow(0, lo, micro), targets.narrow(0, lo, micro));
      const mean = T.clone(l.detach().reshape(1));
      dp.allReduce(mean, 'sum');
      sum += mean.item() / dp.size / gas;
      engine.backward(l);
      const n = engine.step();
      if (m === gas - 1) norms.push(n);
    });
  }
  loss.push(sum);
}
let maxDiff = 0;
const state = engine.zero.globalState();
const refParams = new Map(ref.namedParameters());
for (const [name, t] of state.params) {
  const want = refParams.get(name);
  if (!want) throw new Error(`engine parameter '${name}' is not in the reference model`);
  if (t.shape.join() !== want.shape.join()) throw new Error(`'${name}': [${t.shape}] vs [${want.shape}]`);
  const x = want.dataSync(), y = t.dataSync();
  for (let j = 0; j < x.length; j++) maxDiff = Math.max(maxDiff, Math.abs(x[j] - y[j]) / (1 + Math.abs(x[j])));
}
const lossDiff = Math.max(0, ...loss.map((l, i) => Math.abs(l - refLoss[start + i]) / Math.abs(refLoss[start + i])));
const normDiff = Math.max(0, ...norms.map((n, i) => Math.abs(n - refNorms[start + i]) / refNorms[start + i]));
if (process.env.SAVE_DIR) engine.saveCheckpoint(process.env.SAVE_DIR);
const r = engine.tensorParallelReport;
console.log(JSON.stringify({
  rank: world.rank, start, tp: engine.groups.tensorParallelSize, dp: dp.size, maxDiff, lossDiff, normDiff, steps: engine.globalSteps, params: state.params.length, refParams: refParams.size,
  attention: r.attention, feedForward: r.feedForward, modules: r.modules, splitElements: r.splitElements, replicatedElements: r.replicatedElements
}));
engine.destroy();
world.destroy();

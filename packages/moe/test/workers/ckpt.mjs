// Run by vlmoe-run in the checkpoint test. A small model — self-attention and an FFN (split
// over the tensor-parallel group with TP > 1), an expert-parallel MoE layer (its experts split
// over the tensor-parallel group too with ETP=1) — trains through the engine. MODE=save: 3 steps, save to DIR, then report. MODE=load: load
// from DIR, then report. The report (rank 0, JSON): the model's outputs on a probe batch and
// the global parameters after one more step — equal for every layout that loaded the same
// checkpoint.
import * as T from '@vlmoe/tensor';
import { ExpertParallelGroup, createParallelGroups, initProcessGroup, initialize } from '@vlmoe/parallel';
import { MoE } from '../../dist/index.js';

const pg = initProcessGroup();
const me = pg.rank;
const EP = Number(process.env.EP), STAGE = Number(process.env.STAGE), TP = Number(process.env.TP ?? 1), ETP = process.env.ETP === '1';
const G = (s) => new T.Generator(s);
const groups = createParallelGroups(pg, { tensor: TP, expert: EP });
const dp = groups.dataParallel;

class Net extends T.nn.Module {
  constructor() {
    super();
    this.fc = new T.nn.Linear(8, 8, { generator: G(1) });
    this.attn = new T.nn.MultiheadSelfAttention(8, 4, { generator: G(3) });
    this.ffn = new T.nn.FeedForward(8, 16, { generator: G(4) });
    this.moe = new MoE({ hiddenSize: 8, ffnHiddenSize: 16, numExperts: 4, k: 2, dropTokens: false, enableExpertTensorParallelism: ETP, expertGroup: EP > 1 ? new ExpertParallelGroup(groups.expertParallel) : null, generator: G(2 + dp.rank) });
  }
  // x [B, 4, 8]: a sequence of 4 tokens per sample
  forward(x) {
    const h = this.fc.forward(x);
    const a = T.add(h, this.attn.forward(h));
    const f = T.add(a, this.ffn.forward(a));
    return this.moe.forward(f.reshape(-1, 8)).output.reshape(x.shape);
  }
}

const config = { train_batch_size: 8, optimizer: { type: 'AdamW', params: { lr: 1e-2, weight_decay: 0.01 } }, zero_optimization: { stage: STAGE }, expert_parallel_size: EP, tensor_parallel_size: TP, gradient_clipping: 1.0 };
const { engine } = initialize({ model: new Net(), config, processGroup: pg, groups });
// 8 samples per step, split over the data-parallel ranks (the ranks of a tensor-parallel group share theirs)
const step = (s) => T.scope(() => {
  const x = T.randn([8, 4, 8], { generator: G(100 + s) }), y = T.randn([8, 4, 8], { generator: G(200 + s) });
  const n = 8 / dp.size, lo = dp.rank * n;
  engine.backward(T.nn.mseLoss(engine.forward(x.narrow(0, lo, n)), y.narrow(0, lo, n)));
  engine.step();
});

if (process.env.MODE === 'save') {
  for (let s = 0; s < 3; s++) step(s);
  engine.saveCheckpoint(process.env.DIR);
} else {
  engine.loadCheckpoint(process.env.DIR);
}
const probe = T.noGrad(() => engine.forward(T.randn([3, 4, 8], { generator: G(999) })));
step(3);
// global parameters (every rank takes part): experts gathered over the expert-parallel group, tensor-parallel shards put together
const params = Object.fromEntries(engine.zero.globalState().params.map(([name, t]) => [name, Array.from(t.dataSync())]));
const splitExperts = engine.module.parameters().filter((p) => p.tags.expert && p.tags.tensorParallel).length;
if (me === 0) console.log(JSON.stringify({ steps: engine.globalSteps, probe: Array.from(probe.dataSync()), params, splitExperts }));
pg.destroy();

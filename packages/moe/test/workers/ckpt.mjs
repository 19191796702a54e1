// Run by vlmoe-run in the checkpoint test. A small model with an expert-parallel MoE layer
// trains through the engine. MODE=save: 3 steps, save to DIR, then report. MODE=load: load
// from DIR, then report. The report (rank 0, JSON): the model's outputs on a probe batch and
// the global parameters after one more step — equal for every layout that loaded the same
// checkpoint.
import * as T from '@vlmoe/tensor';
import { ExpertParallelGroup, createParallelGroups, initProcessGroup, initialize } from '@vlmoe/parallel';
import { MoE } from '../../dist/index.js';

const pg = initProcessGroup();
const W = pg.size, me = pg.rank;
const EP = Number(process.env.EP), STAGE = Number(process.env.STAGE);
const G = (s) => new T.Generator(s);
const groups = createParallelGroups(pg, EP);

class Net extends T.nn.Module {
  constructor() {
    super();
    this.fc = new T.nn.Linear(8, 8, { generator: G(1) });
    this.moe = new MoE({ hiddenSize: 8, ffnHiddenSize: 16, numExperts: 4, k: 2, dropTokens: false, expertGroup: EP > 1 ? new ExpertParallelGroup(groups.expertParallel) : null, generator: G(2 + me) });
  }
  forward(x) {
    return this.moe.forward(this.fc.forward(x)).output;
  }
}

const config = { train_batch_size: 8, optimizer: { type: 'AdamW', params: { lr: 1e-2, weight_decay: 0.01 } }, zero_optimization: { stage: STAGE }, expert_parallel_size: EP, gradient_clipping: 1.0 };
const { engine } = initialize({ model: new Net(), config, processGroup: pg, groups });
const step = (s) => T.scope(() => {
  const x = T.randn([8, 8], { generator: G(100 + s) }), y = T.randn([8, 8], { generator: G(200 + s) });
  const lo = me * (8 / W);
  engine.backward(T.nn.mseLoss(engine.forward(x.narrow(0, lo, 8 / W)), y.narrow(0, lo, 8 / W)));
  engine.step();
});

if (process.env.MODE === 'save') {
  for (let s = 0; s < 3; s++) step(s);
  engine.saveCheckpoint(process.env.DIR);
} else {
  engine.loadCheckpoint(process.env.DIR);
}
const probe = T.noGrad(() => engine.forward(T.randn([6, 8], { generator: G(999) })));
step(3);
// global parameters: dense as they are, experts gathered over the expert-parallel group
const params = {};
for (const [name, p] of engine.module.namedParameters()) {
  const full = p.tags.expert && EP > 1 ? T.cat(groups.expertParallel.allGather(p), 0) : p;
  params[name] = Array.from(full.dataSync());
}
if (me === 0) console.log(JSON.stringify({ steps: engine.globalSteps, probe: Array.from(probe.dataSync()), params }));
pg.destroy();

// Run by vlmoe-run in the resume test. MODE=straight: STEPS steps. MODE=first: SPLIT steps,
// save (with the data position as client state), exit. MODE=second: load, continue to
// STEPS. Rank 0 prints every step's loss and the final parameters as JSON. STAGE: the ZeRO
// stage (3 partitions every parameter: no persistence threshold).
import * as T from '@vlmoe/tensor';
import { initProcessGroup, initialize } from '../../dist/index.js';

const pg = initProcessGroup();
const W = pg.size, me = pg.rank;
const STEPS = Number(process.env.STEPS), SPLIT = Number(process.env.SPLIT), MODE = process.env.MODE;
// 15 hidden units: parameters that do not split evenly over the ranks (ZeRO-3 pads them)
const model = new T.nn.Sequential(new T.nn.Linear(8, 15, { generator: new T.Generator(1) }), new T.nn.GELU(), new T.nn.Linear(15, 4, { generator: new T.Generator(2) }));
const config = {
  train_batch_size: 8, gradient_clipping: 1.0, zero_optimization: { stage: Number(process.env.STAGE ?? 1), stage3_param_persistence_threshold: 0 },
  optimizer: { type: 'AdamW', params: { lr: 1e-2, weight_decay: 0.01 } },
  scheduler: { type: 'WarmupDecayLR', params: { warmup_num_steps: 3, total_num_steps: STEPS } },
};
const { engine } = initialize({ model, config, processGroup: pg });
let start = 0;
if (MODE === 'second') start = engine.loadCheckpoint(process.env.DIR).nextStep;
const end = MODE === 'first' ? SPLIT : STEPS;
const losses = [];
for (let s = start; s < end; s++) {
  T.scope(() => {
    const x = T.randn([8, 8], { generator: new T.Generator(1000 + s) }), y = T.randn([8, 4], { generator: new T.Generator(2000 + s) });
    const lo = me * (8 / W);
    const loss = T.nn.mseLoss(engine.forward(x.narrow(0, lo, 8 / W)), y.narrow(0, lo, 8 / W));
    const t = loss.detach().clone();
    engine.backward(loss);
    engine.step();
    pg.allReduce(t, 'avg');
    losses.push(t.item());
  });
}
if (MODE === 'first') engine.saveCheckpoint(process.env.DIR, undefined, { nextStep: SPLIT });
const params = engine.gatheredParameters(() => engine.module.parameters().map((p) => Array.from(p.dataSync())));
if (me === 0) console.log(JSON.stringify({ losses, lr: engine.getLr(), steps: engine.globalSteps, params }));
pg.destroy();

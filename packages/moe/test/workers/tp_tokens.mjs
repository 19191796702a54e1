// Run by vlmoe-run in the MoE tensor-parallel test: an MoE layer under tensor parallelism (the
// ranks of a tensor-parallel group hold the same tokens) de-duplicates its tokens — each rank
// routes 1/P of them through the all-to-all and the experts — and still gives every rank the
// one-process layer's outputs and gradients (float64), with the experts split over the group
// (expert tensor parallelism) or whole, with and without expert parallelism, with expert
// dropout where one process draws the same masks (no expert parallelism).
// Usage: tp_tokens.mjs <tensor_parallel_size> <expert_parallel_size>
import * as T from '@vlmoe/tensor';
import { createParallelGroups, ExpertParallelGroup, initProcessGroup, shardOf, splitTag } from '@vlmoe/parallel';
import { MoE } from '../../dist/index.js';

const world = initProcessGroup();
const [tpSize, epSize] = process.argv.slice(2).map(Number);
const groups = createParallelGroups(world, { tensor: tpSize, expert: epSize });
const tp = groups.tensorParallel, P = tp.size, ep = groups.expertParallel;
const E = 8, L = E / ep.size, d = 6, h = 12;
let worst = 0;

function close(a, b, what) {
  const x = Array.from(a.dataSync()), y = Array.from(b.dataSync());
  if (x.length !== y.length) throw new Error(`${what}: ${x.length} vs ${y.length} values`);
  x.forEach((v, i) => {
    const e = Math.abs(v - y[i]);
    worst = Math.max(worst, e);
    if (!(e <= 1e-10 * (1 + Math.abs(y[i])))) throw new Error(`${what}[${i}]: ${v} vs ${y[i]} (rank ${world.rank})`);
  });
}
const sum = (t, pg) => {
  const c = t.clone();
  pg.allReduce(c, 'sum');
  return c;
};

const configs = [
  { name: 'top-2 dropless', k: 2, dropTokens: false },
  { name: 'top-1 with drops', k: 1, capacityFactor: 0.5, minCapacity: 0 },
  { name: 'top-2, expert dropout', k: 2, capacityFactor: 1.5, dropout: 0.2, noEP: true },
  { name: 'top-1 residual', k: 1, capacityFactor: 1, useResidual: true },
];
for (const etp of [false, true]) for (const cfg of configs) {
  if (cfg.noEP && ep.size > 1) continue; // expert dropout is drawn per rank's rows under expert parallelism
  const name = `${etp ? 'ETP' : 'whole experts'}, ${cfg.name}`;
  // every rank of a tensor-parallel group holds the same tokens; data-parallel replicas their own
  const S = 13 + 4 * groups.dataParallel.rank;
  const opts = { hiddenSize: d, ffnHiddenSize: h, numExperts: E, dtype: 'float64', enableExpertTensorParallelism: etp, ...cfg };
  const ref = new MoE({ ...opts, generator: new T.Generator(42) });
  const par = new MoE({ ...opts, generator: new T.Generator(42) });
  // as the engine wires a model: tensor parallelism first, then experts
  const split = par.setTensorParallelGroup(tp);
  if (split !== (etp && P > 1)) throw new Error(`${name}: setTensorParallelGroup returned ${split}`);
  if (ep.size > 1) par.setExpertParallelGroup(new ExpertParallelGroup(ep));
  // count the rows this rank sends through the all-to-all (or into the experts)
  let routed = 0;
  if (ep.size > 1) {
    const g = par.expertGroup, dispatch = g.dispatch.bind(g);
    g.dispatch = (x, c) => ((routed += x.shape[0]), dispatch(x, c));
  } else {
    const f = par.experts.forward.bind(par.experts);
    par.experts.forward = (x, s) => ((routed += x.shape[0]), f(x, s));
  }
  const x0 = T.randn([S, d], { dtype: 'float64', generator: new T.Generator(100 + groups.dataParallel.rank) });
  const wts = T.randn([S, d], { dtype: 'float64', generator: new T.Generator(200 + groups.dataParallel.rank) });
  // both layers' generators were drawn alike so far: the same dropout masks (T.dropoutSlice keeps every rank's in step)
  const run = (m) => {
    const x = x0.clone().requiresGrad_(true);
    const r = m.forward(x);
    T.add(T.add(T.sum(T.mul(r.output, wts)), T.mul(r.auxLoss, 0.1)), T.mul(r.zLoss, 0.01)).backward();
    return { out: r.output, x, r };
  };
  const a = run(ref), b = run(par);
  close(b.out, a.out, `${name}: output`);
  close(b.x.grad, a.x.grad, `${name}: input gradient`);
  close(par.gate.wg.weight.grad, ref.gate.wg.weight.grad, `${name}: router gradient`);
  // de-duplicated: the ranks of a tensor-parallel group route each kept assignment once between them
  const kept = Number(T.sum(a.r.expertCounts).item()) - a.r.dropped;
  const total = Number(sum(T.tensor([routed], { dtype: 'float64' }), tp).item());
  if (total !== kept || routed > Math.ceil(kept / P)) throw new Error(`${name}: the group routed ${total} rows (this rank ${routed}) for ${kept} kept assignments`);
  // expert gradients, reduced as the engine reduces them, against every replica's one-process ones
  for (const p of ['w1', 'b1', 'w2', 'b2']) {
    let want = sum(ref.experts[p].grad, groups.dataParallel).narrow(0, ep.rank * L, L);
    const tag = par.experts[p].tags.tensorParallel;
    if (tag) want = shardOf(want, tag, tp.rank, P);
    const over = par.experts[p].tags.tensorParallelTokens && P > 1 ? groups.expertDataTensorParallel : groups.expertDataParallel;
    close(sum(par.experts[p].grad, over), want, `${name}: expert ${p} gradient`);
  }
  if (cfg.dropout) {
    // the dropout really dropped
    ref.eval();
    const e = T.noGrad(() => ref.forward(x0).output);
    if (T.max(T.abs(T.sub(e, a.out))).item() < 1e-3) throw new Error(`${name}: dropout did not drop`);
  }
}
world.destroy();
console.log(`tp tokens ok (worst ${worst.toExponential(1)})`);

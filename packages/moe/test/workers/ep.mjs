// Run by vlmoe-run in the expert-parallel test: an MoE layer with its experts spread over the
// ranks must give every rank the same outputs and gradients as the single-process layer on
// that rank's tokens; an expert's weight gradient is the sum over every rank's tokens.
import * as T from '@vlmoe/tensor';
import { ExpertParallelGroup, initProcessGroup } from '@vlmoe/parallel';
import { MoE } from '../../dist/index.js';

const pg = initProcessGroup();
const P = pg.size, me = pg.rank;
const E = 8, L = E / P, d = 6, h = 10;

function close(a, b, what) {
  const x = Array.from(a.dataSync()), y = Array.from(b.dataSync());
  if (x.length !== y.length) throw new Error(`${what}: ${x.length} vs ${y.length} values`);
  x.forEach((v, i) => {
    if (!(Math.abs(v - y[i]) <= 1e-10 * (1 + Math.abs(y[i])))) throw new Error(`${what}[${i}]: ${v} vs ${y[i]} (rank ${me})`);
  });
}

const configs = [
  { name: 'top-2 dropless', k: 2, dropTokens: false },
  { name: 'top-1 with drops', k: 1, capacityFactor: 0.5, minCapacity: 0 },
  { name: 'top-2 residual', k: 2, capacityFactor: 1, useResidual: true },
];
for (const cfg of configs) {
  const S = 17 + 5 * me; // ranks hold different numbers of tokens
  const opts = { hiddenSize: d, ffnHiddenSize: h, numExperts: E, dtype: 'float64', ...cfg };
  const ref = new MoE({ ...opts, generator: new T.Generator(42) });
  const ep = new MoE({ ...opts, expertGroup: new ExpertParallelGroup(pg), generator: new T.Generator(7) });
  T.noGrad(() => {
    T.copy_(ep.gate.wg.weight, ref.gate.wg.weight);
    for (const p of ['w1', 'b1', 'w2', 'b2']) T.copy_(ep.experts[p], ref.experts[p].narrow(0, me * L, L));
    if (cfg.useResidual) for (const [a, b] of [[ep.mlp, ref.mlp], [ep.coefficient, ref.coefficient]]) for (const [n, p] of a.namedParameters()) T.copy_(p, Object.fromEntries(b.namedParameters())[n]);
  });
  const x0 = T.randn([S, d], { dtype: 'float64', generator: new T.Generator(100 + me) });
  const wts = T.randn([S, d], { dtype: 'float64', generator: new T.Generator(200 + me) });
  const run = (m) => {
    const x = x0.clone().requiresGrad_(true);
    const r = m.forward(x);
    T.add(T.add(T.sum(T.mul(r.output, wts)), T.mul(r.auxLoss, 0.1)), T.mul(r.zLoss, 0.01)).backward();
    return { out: r.output, x, dropped: r.dropped };
  };
  const a = run(ref), b = run(ep);
  close(b.out, a.out, `${cfg.name}: output`);
  close(b.x.grad, a.x.grad, `${cfg.name}: input gradient`);
  close(ep.gate.wg.weight.grad, ref.gate.wg.weight.grad, `${cfg.name}: router gradient`);
  if (a.dropped !== b.dropped) throw new Error(`${cfg.name}: dropped ${b.dropped} vs ${a.dropped}`);
  for (const p of ['w1', 'b1', 'w2', 'b2']) {
    const full = ref.experts[p].grad.clone();
    pg.allReduce(full, 'sum'); // every rank's tokens reach expert e on its owner
    close(ep.experts[p].grad, full.narrow(0, me * L, L), `${cfg.name}: expert ${p} gradient`);
  }
}
pg.destroy();
console.log('expert parallel ok');

// allGatherRows on every rank: a contrastive-style loss over the gathered rows; prints this
// rank's input gradient and the single-process gradient of the same global loss for its rows.
import * as T from '@vlmoe/tensor';
import { initProcessGroup, allGatherRows } from '../../dist/index.js';

const pg = initProcessGroup();
const W = pg.size, B = 3, D = 5;
const all = T.randn([W * B, D], { generator: new T.Generator(7), dtype: 'float64' });
const w = T.randn([W * B, D], { generator: new T.Generator(8), dtype: 'float64' });
// each rank's loss: sum over its own rows i of <x_i, sum_j w_j * gathered_j> (touches every rank's rows)
const lossOf = (local, gathered, rank) => T.sum(T.mul(local, T.mul(T.sum(T.mul(gathered, w), 0), rank + 1)));
const x = T.clone(all.narrow(0, pg.rank * B, B)).requiresGrad_();
lossOf(x, allGatherRows(pg, x), pg.rank).backward();
// reference: one process, total loss = sum of every rank's loss
const ref = T.clone(all).requiresGrad_();
let total = T.zeros([], { dtype: 'float64' });
for (let r = 0; r < W; r++) total = T.add(total, lossOf(ref.narrow(0, r * B, B), ref, r));
total.backward();
const want = ref.grad.narrow(0, pg.rank * B, B);
const diff = T.max(T.abs(T.sub(x.grad, want))).item();
console.log(JSON.stringify({ rank: pg.rank, diff, gathered: allGatherRows(pg, T.clone(x)).shape }));
pg.destroy();

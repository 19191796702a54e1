// Tensor-parallel layers on every rank of a tensor-parallel group (the whole world, or groups
// of `--tp` ranks inside it) against their one-process twins, in float64: outputs and every
// gradient (this rank's shard of the full gradient). Prints one JSON line per rank: the
// largest absolute difference per check.
import * as T from '@vlmoe/tensor';
import {
  initProcessGroup, createParallelGroups, ColumnParallelLinear, RowParallelLinear, VocabParallelEmbedding,
  vocabParallelCrossEntropy, ParallelSelfAttention, ParallelFeedForward, scatterToTensorParallelRegion, gatherFromTensorParallelRegion, shardOf, unshard, splitTag,
  RowLayout, gatherRows, scatterRows,
} from '../../dist/index.js';

const tpArg = process.argv.indexOf('--tp');
const world = initProcessGroup();
const groups = createParallelGroups(world, { tensor: tpArg > 0 ? Number(process.argv[tpArg + 1]) : world.size });
const tp = groups.tensorParallel;
const P = tp.size, r = tp.rank;
const f64 = { dtype: 'float64' };
const diffs = {};
const check = (name, got, want) => {
  if (got.shape.join() !== want.shape.join()) throw new Error(`${name}: shape [${got.shape}] vs [${want.shape}]`);
  diffs[name] = Math.max(diffs[name] ?? 0, T.max(T.abs(T.sub(got, want))).item());
};
const shard = (full, dim, stride = 1) => shardOf(full, splitTag(full.shape[dim], dim, P, stride), r, P);
// every rank of a tensor-parallel group sees the same data; data-parallel replicas see their own
const seed = 100 + groups.dataParallel.rank;
const g = new T.Generator(seed);
const lin = (inF, outF, bias = true) => new T.nn.Linear(inF, outF, { ...f64, generator: g, bias });

// 1. MLP: column (no gather) → gelu → row (input parallel), vs fc2(gelu(fc1(x)))
{
  const fc1 = lin(8, 4 * P * 2), fc2 = lin(4 * P * 2, 8);
  const x = T.randn([3, 5, 8], { ...f64, generator: g });
  const w = T.randn([3, 5, 8], { ...f64, generator: g });
  const xr = T.clone(x).requiresGrad_();
  const yr = fc2.forward(T.gelu(fc1.forward(xr)));
  T.sum(T.mul(yr, w)).backward();
  const col = ColumnParallelLinear.fromDense(fc1, tp), row = RowParallelLinear.fromDense(fc2, tp);
  const xp = T.clone(x).requiresGrad_();
  const yp = row.forward(T.gelu(col.forward(xp)));
  T.sum(T.mul(yp, w)).backward();
  check('mlp out', yp, yr);
  check('mlp dx', xp.grad, xr.grad);
  check('mlp fc1.weight grad', col.weight.grad, shard(fc1.weight.grad, 0));
  check('mlp fc1.bias grad', col.bias.grad, shard(fc1.bias.grad, 0));
  check('mlp fc2.weight grad', row.weight.grad, shard(fc2.weight.grad, 1));
  check('mlp fc2.bias grad', row.bias.grad, fc2.bias.grad);
  // the shards put back together are the full weights
  check('unshard fc1.weight', unshard(tp.allGather(col.weight), { dim: 0, stride: 1 }), fc1.weight);
  check('unshard fc2.weight', unshard(tp.allGather(row.weight), { dim: 1, stride: 1 }), fc2.weight);
}

// 2. fused q·k·v weight (stride 3): this rank's columns are its heads of q, of k and of v;
//    gathered column output and a row layer taking the full input (scatter first)
{
  const qkv = lin(6, 3 * 2 * P, false);
  const plain = lin(6, 2 * P), back = lin(2 * P, 6);
  const x = T.randn([4, 6], { ...f64, generator: g });
  const xr = T.clone(x).requiresGrad_();
  const yq = qkv.forward(xr), yg = plain.forward(xr), yb = back.forward(yg);
  T.add(T.add(T.sum(T.mul(yq, yq)), T.sum(T.mul(yg, T.tanh(yg)))), T.sum(T.mul(yb, yb))).backward();
  const cq = ColumnParallelLinear.fromDense(qkv, tp, { stride: 3 });
  const cg = ColumnParallelLinear.fromDense(plain, tp, { gatherOutput: true });
  const rb = RowParallelLinear.fromDense(back, tp, { inputIsParallel: false });
  const xp = T.clone(x).requiresGrad_();
  const pq = cq.forward(xp), pg = cg.forward(xp), pb = rb.forward(pg);
  // each rank's q·k·v columns carry only its share of sum(yq²); the others come from other ranks' backward
  T.add(T.add(T.sum(T.mul(pq, pq)), T.sum(T.mul(pg, T.tanh(pg)))), T.sum(T.mul(pb, pb))).backward();
  check('qkv out (stride 3)', pq, shard(yq, 1, 3));
  check('qkv weight grad (stride 3)', cq.weight.grad, shard(qkv.weight.grad, 0, 3));
  check('gathered column out', pg, yg);
  check('gathered column weight grad', cg.weight.grad, shard(plain.weight.grad, 0));
  check('row (scattered input) out', pb, yb);
  check('row (scattered input) weight grad', rb.weight.grad, shard(back.weight.grad, 1));
  check('dx through scatter/gather', xp.grad, xr.grad);
  check('unshard qkv weight', unshard(tp.allGather(cq.weight), { dim: 0, stride: 3 }), qkv.weight);
}

// 3. scatter ∘ gather is the identity, forward and backward
{
  const x = T.randn([2, 3, 4 * P], { ...f64, generator: g }).requiresGrad_();
  const y = gatherFromTensorParallelRegion(tp, scatterToTensorParallelRegion(tp, x));
  T.sum(T.mul(y, y)).backward();
  check('gather(scatter(x))', y, x);
  check('gather(scatter(x)) grad', x.grad, T.mul(x, 2));
}

// 4. vocab-parallel embedding (ids everywhere in the vocabulary; also a vocabulary P does not divide)
for (const V of [6 * P, 6 * P + 1]) {
  const d = 5;
  const emb = new T.nn.Embedding(V, d, { ...f64, generator: g });
  const ids = T.randint(0, V, [4, 7], { generator: g, dtype: 'int64' });
  const w = T.randn([4, 7, d], { ...f64, generator: g });
  T.sum(T.mul(emb.forward(ids), w)).backward();
  const ve = VocabParallelEmbedding.fromDense(emb, tp);
  const out = ve.forward(ids);
  T.sum(T.mul(out, w)).backward();
  check(`vocab embedding out (V ${V % P ? 'padded' : 'divisible'})`, out, emb.forward(ids));
  check(`vocab embedding grad (V ${V % P ? 'padded' : 'divisible'})`, ve.weight.grad, shard(emb.weight.grad, 0));
}

// 5. vocab-parallel cross-entropy (some targets ignored) vs crossEntropy on the full logits;
//    with V = 5P + 1 the slices are padded (⌈V/P⌉ columns, padding logits are garbage on purpose)
for (const [reduction, V] of [['mean', 5 * P], ['sum', 5 * P], ['none', 5 * P], ['mean', 5 * P + 1], ['none', 5 * P + 1]]) {
  const N = 9;
  const logits = T.mul(T.randn([N, V], { ...f64, generator: g }), 3);
  const target = T.randint(0, V, [N], { generator: g, dtype: 'int64' });
  const tgt = T.where(T.lt(T.uniform([N], 0, 1, { generator: g }), 0.25), -100, target);
  const gw = reduction === 'none' ? T.randn([N], { ...f64, generator: g }) : T.ones([], f64);
  const lr = T.clone(logits).requiresGrad_();
  const ref = T.crossEntropy(lr, tgt, { reduction });
  T.sum(T.mul(ref, gw)).backward();
  const padded = V % P !== 0;
  const tag = padded ? { dim: 1, stride: 1, full: V } : { dim: 1, stride: 1 };
  const mine = shardOf(logits, tag, r, P);
  // padding columns hold large values: they must not count
  const cols = mine.shape[1];
  const lo = r * cols;
  const garbage = T.where(T.ge(T.add(T.arange(0, cols, 1, { dtype: 'int64' }), lo), V), 50, mine);
  const lp = T.clone(garbage).requiresGrad_();
  const got = vocabParallelCrossEntropy(tp, lp, tgt, { reduction, vocabSize: V });
  T.sum(T.mul(got, gw)).backward();
  const name = `vocab cross-entropy ${reduction}${padded ? ' (padded)' : ''}`;
  check(name, got, ref);
  check(`${name} grad`, lp.grad, shardOf(lr.grad, tag, r, P));
}

// 6. a column-parallel layer whose outputs P does not divide: padded shard, gathered output trimmed
{
  const lin2 = lin(6, 4 * P + 1);
  const x = T.randn([3, 6], { ...f64, generator: g });
  const xr = T.clone(x).requiresGrad_();
  const yr = lin2.forward(xr);
  T.sum(T.mul(yr, yr)).backward();
  const c = ColumnParallelLinear.fromDense(lin2, tp, { gatherOutput: true });
  const xp = T.clone(x).requiresGrad_();
  const yp = c.forward(xp);
  T.sum(T.mul(yp, yp)).backward();
  const tag = P > 1 ? { dim: 0, stride: 1, full: 4 * P + 1 } : { dim: 0, stride: 1 };
  check('padded column out', yp, yr);
  check('padded column dx', xp.grad, xr.grad);
  check('padded column weight grad', c.weight.grad, shardOf(lin2.weight.grad, tag, r, P));
  check('padded column unshard', unshard(tp.allGather(c.weight), tag), lin2.weight);
}

// 7. dropout inside the split regions (attention weights, FFN hidden units) and outside them:
//    training mode, the same generator seed on both sides — the same masks, so the same numbers
{
  const make = () => {
    const gen = new T.Generator(77);
    return {
      attn: new T.nn.MultiheadSelfAttention(4 * P, 2 * P, { ...f64, generator: gen, attnDropout: 0.3, projDropout: 0.2 }),
      ff: new T.nn.FeedForward(4 * P, 8 * P, { ...f64, generator: gen, dropout: 0.25 }),
    };
  };
  const ref = make(), par = make();
  const x = T.randn([2, 5, 4 * P], { ...f64, generator: g });
  const xr = T.clone(x).requiresGrad_();
  const yr = ref.ff.forward(T.add(xr, ref.attn.forward(xr)));
  T.sum(T.mul(yr, yr)).backward();
  const pa = ParallelSelfAttention.fromDense(par.attn, tp), pf = ParallelFeedForward.fromDense(par.ff, tp);
  const xp = T.clone(x).requiresGrad_();
  const yp = pf.forward(T.add(xp, pa.forward(xp)));
  T.sum(T.mul(yp, yp)).backward();
  check('dropout: attention + FFN out', yp, yr);
  check('dropout: dx', xp.grad, xr.grad);
  check('dropout: qkv weight grad', pa.qkv.weight.grad, shard(ref.attn.qkv.weight.grad, 0, 3));
  check('dropout: fc1 weight grad', pf.fc1.weight.grad, shard(ref.ff.fc1.weight.grad, 0));
  check('dropout: fc2 weight grad', pf.fc2.weight.grad, shard(ref.ff.fc2.weight.grad, 1));
  // the dropout really dropped (outputs differ from eval mode)
  diffs['dropout: active (must be large)'] = 0;
  ref.attn.eval();
  const ye = T.noGrad(() => ref.attn.forward(x));
  if (T.max(T.abs(T.sub(ye, T.noGrad(() => { ref.attn.train(); return ref.attn.forward(x); })))).item() < 1e-3) diffs['dropout: active (must be large)'] = 1;
}

// Row mappings with uneven counts (what the MoE layer's token de-duplication runs on).
{
  // 'slice': contiguous blocks of a replicated [R, 3] (R = 2P + 1 does not divide)
  const R = 2 * P + 1, blocks = RowLayout.blocks(R, P);
  const X = T.randn([R, 3], { ...f64, generator: g }), W = T.randn([R, 3], { ...f64, generator: g });
  const xs = T.clone(X).requiresGrad_();
  const mine = scatterRows(tp, xs, blocks, 'slice');
  check('rows: slice scatter', mine, X.narrow(0, blocks.starts[r], blocks.counts[r]));
  const back = gatherRows(tp, T.mul(mine, 2), blocks, 'slice');
  check('rows: slice gather', back, T.mul(X, 2));
  T.sum(T.mul(back, W)).backward();
  check('rows: slice grad', xs.grad, T.mul(W, 2));
  // 'reduce-scatter': rank q holds (q + j) mod 3 rows of each of 3 groups (some none), gathered group by group
  const counts = Array.from({ length: P }, (_, q) => [0, 1, 2].map((j) => (q + j) % 3));
  const { layout, groupSizes } = RowLayout.groupMajor(counts);
  const own = (q) => T.randn([layout.counts[q], 3], { ...f64, generator: new T.Generator(500 + q) });
  const weight = (q) => T.randn([layout.total, 3], { ...f64, generator: new T.Generator(700 + q) });
  // the expected full layout: group j's rows from rank 0, 1, …
  const parts = [];
  for (let j = 0; j < 3; j++) for (let q = 0; q < P; q++) {
    const before = counts[q].slice(0, j).reduce((a, b) => a + b, 0);
    parts.push(own(q).narrow(0, before, counts[q][j]));
  }
  const full = T.cat(parts, 0);
  const mineRows = T.tensor(Array.from(layout.fullRowsOf(r)), { dtype: 'int64' });
  const y = T.clone(own(r)).requiresGrad_();
  const gathered = gatherRows(tp, y, layout, 'reduce-scatter');
  check('rows: group-major gather', gathered, full);
  diffs['rows: group sizes'] = Math.abs(groupSizes.reduce((a, b) => a + b, 0) - layout.total) + Math.abs(groupSizes[0] - counts.reduce((a, c) => a + c[0], 0));
  T.sum(T.mul(gathered, weight(r))).backward();
  let wsum = weight(0);
  for (let q = 1; q < P; q++) wsum = T.add(wsum, weight(q));
  check('rows: gather grad is the reduce-scatter of every rank\'s', y.grad, T.indexSelect(wsum, 0, mineRows));
  // forward reduce-scatter of every rank's full-layout partial, backward all-gather
  const partial = (q) => T.randn([layout.total, 3], { ...f64, generator: new T.Generator(900 + q) });
  const V = (q) => T.randn([layout.counts[q], 3], { ...f64, generator: new T.Generator(1100 + q) });
  const z = T.clone(partial(r)).requiresGrad_();
  const rs = scatterRows(tp, z, layout, 'reduce-scatter');
  let psum = partial(0);
  for (let q = 1; q < P; q++) psum = T.add(psum, partial(q));
  check('rows: reduce-scatter', rs, T.indexSelect(psum, 0, mineRows));
  T.sum(T.mul(rs, V(r))).backward();
  // full row i is rank-major row order[i]
  const vfull = T.indexSelect(T.cat(Array.from({ length: P }, (_, q) => V(q)), 0), 0, T.tensor(Array.from(layout.order), { dtype: 'int64' }));
  check('rows: reduce-scatter grad is the all-gather', z.grad, vfull);
}

console.log(JSON.stringify({ rank: world.rank, tpRank: r, tpSize: P, diffs }));
world.destroy();

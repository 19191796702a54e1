// Run by vlmoe-run in the collective tests: every collective on the world group and on
// subgroups, checked against a reference computed locally from every rank's (deterministic)
// data. Prints "collectives ok" on success; any mismatch throws (exit status 1).
import * as T from '@vlmoe/tensor';
import { initProcessGroup } from '../../dist/index.js';

const pg = initProcessGroup();
const { rank, size } = pg;
const DTYPES = ['float32', 'float64', 'int32', 'int64'];
// numel 0, 1, odd, and one larger than a slot (the tests run with 64 KiB slots)
const SIZES = [0, 1, 1001, 50_000];

/** Data of rank r: small integers (exact in every dtype and in any summation order). */
const dataOf = (r, n, salt = 0) => Array.from({ length: n }, (_, i) => ((i * 7 + r * 13 + salt) % 23) - 11);
const tensorOf = (vals, dtype, shape) => T.tensor(vals, { dtype, shape: shape ?? [vals.length] });
const values = (t) => Array.from(t.dataSync(), Number);

function expectEqual(got, want, what) {
  if (got.length !== want.length) throw new Error(`${what}: length ${got.length}, want ${want.length}`);
  for (let i = 0; i < want.length; i++)
    if (Math.abs(got[i] - want[i]) > 1e-6 * Math.max(1, Math.abs(want[i]))) throw new Error(`${what}: [${i}] = ${got[i]}, want ${want[i]} (rank ${rank})`);
}

const reduce = (op, arrays) => arrays[0].map((_, i) => {
  const col = arrays.map((a) => a[i]);
  if (op === 'sum') return col.reduce((a, b) => a + b, 0);
  if (op === 'avg') return col.reduce((a, b) => a + b, 0) / col.length;
  if (op === 'max') return Math.max(...col);
  return Math.min(...col);
});

function checkAll(g, label) {
  const P = g.size, me = g.rank;
  for (const dtype of DTYPES) {
    for (const n of SIZES) {
      for (const op of ['sum', 'avg', 'max', 'min']) {
        if (op === 'avg' && dtype.startsWith('int')) continue;
        const t = tensorOf(dataOf(me, n), dtype);
        g.allReduce(t, op);
        expectEqual(values(t), reduce(op, Array.from({ length: P }, (_, r) => dataOf(r, n))), `${label} allReduce ${op} ${dtype} n=${n}`);
      }
      // broadcast from the last rank
      const b = tensorOf(dataOf(me, n, 5), dtype);
      g.broadcast(b, P - 1);
      expectEqual(values(b), dataOf(P - 1, n, 5), `${label} broadcast ${dtype} n=${n}`);
      // all-gather
      const parts = g.allGather(tensorOf(dataOf(me, n, 1), dtype));
      parts.forEach((p, r) => expectEqual(values(p), dataOf(r, n, 1), `${label} allGather ${dtype} n=${n} part ${r}`));
      // reduce-scatter: every rank contributes P blocks of n
      const out = T.zeros([n], { dtype });
      g.reduceScatterTensor(out, tensorOf(dataOf(me, P * n, 2), dtype), 'sum');
      const full = reduce('sum', Array.from({ length: P }, (_, r) => dataOf(r, P * n, 2)));
      expectEqual(values(out), full.slice(me * n, (me + 1) * n), `${label} reduceScatter ${dtype} n=${n}`);
    }
    // all-to-all with uneven splits: rank i sends (i + j) % 3 + j rows of width 3 to rank j
    const rows = (i, j) => ((i + j) % 3) + j + (dtype === 'float64' ? 400 : 0);
    const sendSplits = Array.from({ length: P }, (_, j) => rows(me, j));
    const recvSplits = Array.from({ length: P }, (_, i) => rows(i, me));
    const blockOf = (i, j) => dataOf(i * 100 + j, rows(i, j) * 3);
    const input = tensorOf(sendSplits.flatMap((_, j) => blockOf(me, j)), dtype, [sendSplits.reduce((a, b) => a + b, 0), 3]);
    const got = T.zeros([recvSplits.reduce((a, b) => a + b, 0), 3], { dtype });
    g.allToAllSingle(got, input, recvSplits, sendSplits);
    expectEqual(values(got), recvSplits.flatMap((_, i) => blockOf(i, me)), `${label} allToAllSingle ${dtype}`);
    // equal splits
    const eqIn = tensorOf(dataOf(me, P * 4, 9), dtype, [P * 2, 2]);
    const eqOut = T.zeros([P * 2, 2], { dtype });
    g.allToAllSingle(eqOut, eqIn);
    expectEqual(values(eqOut), Array.from({ length: P }, (_, i) => dataOf(i, P * 4, 9).slice(me * 4, me * 4 + 4)).flat(), `${label} allToAllSingle equal ${dtype}`);
  }
  // send / recv around a ring, larger than a slot
  if (P > 1) {
    const next = (me + 1) % P, prev = (me + P - 1) % P;
    const msg = tensorOf(dataOf(me, 40_000, 3), 'float32');
    const inbox = T.zeros([40_000]);
    if (me % 2 === 0) {
      g.send(msg, next);
      g.recv(inbox, prev);
    } else {
      g.recv(inbox, prev);
      g.send(msg, next);
    }
    expectEqual(values(inbox), dataOf(prev, 40_000, 3), `${label} send/recv`);
  }
  // a strided view is reduced in place
  const base = T.tensor(dataOf(me, 12), { dtype: 'float64', shape: [3, 4] });
  g.allReduce(base.t(), 'sum');
  expectEqual(values(base), reduce('sum', Array.from({ length: P }, (_, r) => dataOf(r, 12))), `${label} allReduce strided`);
  // async all-reduces: several outstanding on the communication thread, a blocking collective
  // behind them, completion in any wait order; a strided target is written back at wait()
  const sizes = [1, 1001, 50_000, 0, 7];
  const works = sizes.map((n, k) => {
    const t = tensorOf(dataOf(me, n, 100 + k), 'float32');
    return { t, n, k, w: g.allReduce(t, k === 2 ? 'max' : 'sum', { async: true }) };
  });
  const strided = T.tensor(dataOf(me, 12, 3), { dtype: 'float64', shape: [3, 4] });
  const ws = g.allReduce(strided.t(), 'sum', { async: true });
  const sync = tensorOf(dataOf(me, 5, 9), 'int64');
  g.allReduce(sync, 'sum');
  expectEqual(values(sync), reduce('sum', Array.from({ length: P }, (_, r) => dataOf(r, 5, 9))), `${label} blocking allReduce after async ones`);
  if (!works.every((x) => x.w.isCompleted())) throw new Error(`${label}: a blocking collective returned before the async ones queued earlier`);
  for (const x of [...works].reverse()) {
    x.w.wait();
    x.w.wait(); // idempotent
    expectEqual(values(x.t), reduce(x.k === 2 ? 'max' : 'sum', Array.from({ length: P }, (_, r) => dataOf(r, x.n, 100 + x.k))), `${label} async allReduce n=${x.n}`);
  }
  ws.wait();
  expectEqual(values(strided), reduce('sum', Array.from({ length: P }, (_, r) => dataOf(r, 12, 3))), `${label} async allReduce strided`);
  g.barrier();
}

checkAll(pg, 'world');
if (size >= 2) {
  // subgroups: the even ranks, and the last two ranks in reverse order
  const evens = Array.from({ length: size }, (_, r) => r).filter((r) => r % 2 === 0);
  const ge = pg.newGroup(evens);
  if ((ge !== null) !== (rank % 2 === 0)) throw new Error('newGroup membership is wrong');
  if (ge) {
    if (ge.rank !== evens.indexOf(rank) || ge.size !== evens.length) throw new Error('newGroup rank/size is wrong');
    checkAll(ge, 'evens');
  }
  const tail = [size - 1, size - 2];
  const gt = pg.newGroup(tail);
  if (gt) {
    if (gt.ranks[gt.rank] !== rank) throw new Error('newGroup ranks are wrong');
    const t = T.tensor([rank], { dtype: 'int64' });
    gt.allReduce(t, 'max');
    expectEqual(values(t), [size - 1], 'tail group');
  }
  pg.barrier();
}
pg.destroy();
console.log('collectives ok');

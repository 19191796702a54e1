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
    // reduce-scatter with uneven blocks (one empty, one larger than a slot), as views of one
    // buffer (sent without a copy) and as separate tensors (concatenated), with max and avg
    const counts = Array.from({ length: P }, (_, j) => [3, 0, 20_000, 1001][j % 4] + j);
    const displ = counts.map((_, j) => counts.slice(0, j).reduce((a, b) => a + b, 0));
    const total = counts.reduce((a, b) => a + b, 0);
    for (const op of dtype.startsWith('int') ? ['sum', 'max'] : ['sum', 'max', 'avg']) {
      const flatIn = tensorOf(dataOf(me, total, 4), dtype);
      const want = reduce(op, Array.from({ length: P }, (_, r) => dataOf(r, total, 4))).slice(displ[me], displ[me] + counts[me]);
      const o1 = T.zeros([counts[me]], { dtype });
      g.reduceScatter(o1, counts.map((c, j) => flatIn.narrow(0, displ[j], c)), op);
      expectEqual(values(o1), want, `${label} reduceScatter uneven views ${op} ${dtype}`);
      const o2 = T.zeros([counts[me]], { dtype });
      g.reduceScatter(o2, counts.map((c, j) => T.clone(flatIn.narrow(0, displ[j], c))), op);
      expectEqual(values(o2), want, `${label} reduceScatter uneven copies ${op} ${dtype}`);
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
  // a large all-to-all (each rank's input and output past the last-level cache, so the local
  // block takes the streaming-store copy), odd block sizes and offsets; int32 values
  // rank·2^24 + position tell every element's origin
  if (label === 'world') {
    const big = (i, j) => 1_000_003 * (1 + ((i + 2 * j) % 3)) + 7 * j + i;
    const sendB = Array.from({ length: P }, (_, j) => big(me, j)), recvB = Array.from({ length: P }, (_, i) => big(i, me));
    const sum = (a) => a.reduce((x, y) => x + y, 0);
    const bigIn = T.add(T.arange(0, sum(sendB), 1, { dtype: 'int32' }), me * 2 ** 24);
    const bigOut = T.full([sum(recvB)], -1, { dtype: 'int32' });
    g.allToAllSingle(bigOut, bigIn, recvB, sendB);
    const got = bigOut.dataSync();
    let at = 0;
    for (let i = 0; i < P; i++) {
      let src = 0;
      for (let j = 0; j < me; j++) src += big(i, j);
      for (let k = 0; k < recvB[i]; k++, at++)
        if (got[at] !== i * 2 ** 24 + src + k) throw new Error(`${label} large allToAll: element ${at} (from rank ${i}, #${k}) is ${got[at]}, want ${i * 2 ** 24 + src + k} (rank ${rank})`);
    }
    bigIn.dispose();
    bigOut.dispose();
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
  // async reduce-scatters (equal and uneven) interleaved with an async all-reduce, waited out of order
  const rsIn = tensorOf(dataOf(me, P * 30_000, 11), 'float32');
  const rsOut = T.zeros([30_000]);
  const w1 = g.reduceScatterTensor(rsOut, rsIn, 'sum', { async: true });
  const ar = tensorOf(dataOf(me, 777, 12), 'float64');
  const w2 = g.allReduce(ar, 'sum', { async: true });
  const uc = Array.from({ length: P }, (_, j) => 5 + 3 * j), ud = uc.map((_, j) => uc.slice(0, j).reduce((a, b) => a + b, 0));
  const uIn = tensorOf(dataOf(me, ud[P - 1] + uc[P - 1], 13), 'float64');
  const uOut = T.zeros([2, uc[me]], { dtype: 'float64' }).select(0, 1); // strided target: written back at wait()
  const w3 = g.reduceScatter(uOut, uc.map((c, j) => uIn.narrow(0, ud[j], c)), 'sum', { async: true });
  w3.wait();
  w1.wait();
  w2.wait();
  expectEqual(values(rsOut), reduce('sum', Array.from({ length: P }, (_, r) => dataOf(r, P * 30_000, 11))).slice(me * 30_000, (me + 1) * 30_000), `${label} async reduceScatterTensor`);
  expectEqual(values(ar), reduce('sum', Array.from({ length: P }, (_, r) => dataOf(r, 777, 12))), `${label} async allReduce among reduce-scatters`);
  expectEqual(values(uOut), reduce('sum', Array.from({ length: P }, (_, r) => dataOf(r, ud[P - 1] + uc[P - 1], 13))).slice(ud[me], ud[me] + uc[me]), `${label} async reduceScatter uneven, strided out`);
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

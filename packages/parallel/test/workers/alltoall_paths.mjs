// Run by vlmoe-run: shm all-to-alls whose inputs live in shareable blocks that peers map
// (shm.h): offset views into a block, the same block read again after its contents changed,
// blocks freed and replaced, more blocks than the mapping cache holds. Every result is
// checked element by element; every rank prints its transfer stats as JSON last.
import * as T from '@vlmoe/tensor';
import { initProcessGroup } from '../../dist/index.js';

const pg = initProcessGroup();
const P = pg.size, me = pg.rank;

// element k of rank i's block for rank j, in round `round`: exact in float32
const val = (i, j, k, round) => ((i * 7 + j * 3 + k * 11 + round * 5) % 1999) - 999;

function roundTrip(counts, round, { offset = 0 } = {}) {
  const send = counts(me), recv = Array.from({ length: P }, (_, i) => counts(i)[me]);
  const total = send.reduce((a, b) => a + b, 0);
  const vals = new Float32Array(offset + total);
  let at = offset;
  for (let j = 0; j < P; j++) for (let k = 0; k < send[j]; k++) vals[at++] = val(me, j, k, round);
  const block = T.tensor(vals);
  const input = block.narrow(0, offset, total);
  const out = T.full([recv.reduce((a, b) => a + b, 0)], Number.NaN);
  const run = () => {
    out.fill_(Number.NaN);
    pg.allToAllSingle(out, input, recv, send);
    const got = out.dataSync();
    let o = 0;
    for (let i = 0; i < P; i++)
      for (let k = 0; k < recv[i]; k++, o++)
        if (got[o] !== val(i, me, k, round)) throw new Error(`round ${round}: element ${o} (from rank ${i}, #${k}) is ${got[o]}, want ${val(i, me, k, round)} (rank ${me})`);
  };
  run();
  return { block, out, run };
}

const even = (n) => () => Array.from({ length: P }, () => n);
const uneven = (n) => (i) => Array.from({ length: P }, (_, j) => n + 977 * ((i + 2 * j) % 3));
// 1: fresh blocks of several sizes, equal and uneven splits, a view at an odd offset
for (const [r, counts, offset] of [[0, even(300_000), 0], [1, uneven(200_000), 0], [2, uneven(150_000), 12_345], [3, even(20_000), 3]]) {
  const { block, out } = roundTrip(counts, r, { offset });
  block.dispose();
  out.dispose();
}
// 2: the same block read again after its contents changed in place (a mapping shows the
// sender's current data, never a stale copy)
{
  const n = 250_000, total = n * P;
  const input = T.empty([total]), out = T.empty([total]);
  for (let round = 10; round < 14; round++) {
    const vals = new Float32Array(total);
    for (let j = 0, at = 0; j < P; j++) for (let k = 0; k < n; k++) vals[at++] = val(me, j, k, round);
    input.copy_(T.tensor(vals));
    pg.allToAllSingle(out, input);
    const got = out.dataSync();
    for (let i = 0, o = 0; i < P; i++)
      for (let k = 0; k < n; k++, o++) if (got[o] !== val(i, me, k, round)) throw new Error(`reused block, round ${round}: element ${o} is ${got[o]}, want ${val(i, me, k, round)}`);
  }
}
// 3: many distinct blocks alive at once (more bytes than a small mapping cache holds; KEEP
// rounds, two blocks each, outnumber a small descriptor budget)
{
  const keep = [];
  const rounds = Number(process.env.KEEP ?? 12);
  for (let r = 20; r < 20 + rounds; r++) keep.push(roundTrip(uneven(60_000 + 5_000 * (r % 40)), r));
  // then read the oldest ones again: evicted mappings are made anew
  for (const { run } of keep.slice(0, 3)) run();
}
pg.barrier();
const stats = pg.backend === 'shm' ? pg.transferStats() : null;
pg.destroy();
console.log(JSON.stringify({ rank: me, stats }));
console.log('paths ok');

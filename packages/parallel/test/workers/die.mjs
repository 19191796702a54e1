// Rank `VICTIM` exits mid-run; the others must fail inside the next collective with an error
// that names it, within the timeout.
import * as T from '@vlmoe/tensor';
import { initProcessGroup } from '../../dist/index.js';

const pg = initProcessGroup();
const victim = Number(process.env.VICTIM ?? 1);
const t = T.ones([1000]);
pg.allReduce(t);
if (pg.rank === victim) {
  if (process.env.DIE_BY === 'kill') process.kill(process.pid, 'SIGKILL'); // no exit handlers at all, as a crash
  process.exit(7);
}
const started = Date.now();
try {
  for (let i = 0; i < 5; i++) pg.allReduce(t);
  console.log('no error: BAD');
} catch (e) {
  console.log(`failed after ${Date.now() - started} ms: ${e.message}`);
  process.exit(3);
}

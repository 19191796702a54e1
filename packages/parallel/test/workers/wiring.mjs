// Run by vlmoe-run (2 ranks) in the engine tests: what the engine refuses to wire, with the
// message that names it, before any step; and what it hands to a model that can take it.
import * as T from '@vlmoe/tensor';
import { initProcessGroup, initialize } from '../../dist/index.js';

const pg = initProcessGroup();
const config = { train_batch_size: 2 * pg.size, expert_parallel_size: 2 };
const expertParam = (shape) => new T.nn.Parameter(T.zeros(shape), { tags: { expert: true } });

/** A stand-in for @vlmoe/moe's MoE: E stacked experts it can cut to this rank's share. */
class Layer extends T.nn.Module {
  constructor(E) {
    super();
    this.numExperts = E;
    this.w = expertParam([E, 3]);
    this.given = null;
  }
  setExpertParallelGroup(g) {
    this.given = g;
    const L = this.numExperts / g.size;
    const old = this.w;
    this.w = new T.nn.Parameter(T.noGrad(() => T.clone(old.narrow(0, g.rank * L, L))), { tags: { expert: true } });
    old.dispose();
  }
  forward(x) { return x; }
}
class Dense extends T.nn.Module {
  constructor() { super(); this.fc = new T.nn.Linear(3, 3); }
  forward(x) { return this.fc.forward(x); }
}
class Loose extends T.nn.Module {
  constructor() { super(); this.fc = new T.nn.Linear(3, 3); this.stray = expertParam([4, 3]); }
  forward(x) { return x; }
}
class Both extends T.nn.Module {
  constructor() { super(); this.moe = new Layer(4); this.other = new Layer(3); }
  forward(x) { return x; }
}
class Rec extends T.nn.Module {
  constructor() { super(); this.moe = new Layer(4); this.dp = null; }
  setDataParallelGroup(g) { this.dp = g; }
  forward(x) { return x; }
}

const refusals = [
  [() => new Dense(), /expert_parallel_size is 2, but the model has no MoE layer that takes an expert-parallel group/],
  [() => new Loose(), /no MoE layer that takes an expert-parallel group.*its expert parameters cannot be spread/],
  [() => new Both(), /expert_parallel_size 2 does not divide the 3 experts of MoE layer 'other'/],
  [() => { const m = new Both(); m.other = new T.nn.Sequential(new Loose()); return m; }, /expert parameter 'other\.0\.stray' belongs to no MoE layer/],
];
for (const [make, re] of refusals) {
  const m = make();
  let err = null;
  try {
    initialize({ model: m, processGroup: pg, config });
  } catch (e) {
    err = e;
  }
  if (!err || !re.test(err.message)) throw new Error(`expected ${re}, got ${err ? err.message : 'no error'}`);
  // refused before anything changed: no layer was cut
  for (const l of m.modules()) if (l instanceof Layer && (l.given || l.w.shape[0] !== l.numExperts)) throw new Error('a refused model was changed');
}
// a model that takes the groups gets them: its layer keeps 1/2 of the experts, the data-parallel group is the world
const m = new Rec();
const { engine } = initialize({ model: m, processGroup: pg, config });
if (m.moe.given?.size !== 2 || m.moe.w.shape[0] !== 2 || m.dp !== engine.groups.world) throw new Error(`wiring: group ${m.moe.given?.size}, experts ${m.moe.w.shape[0]}, dp ${m.dp === engine.groups.world}`);
engine.destroy();
pg.destroy();
console.log('wiring ok');

/**
 * Trains a 2-layer MLP (linear → GELU → linear, cross-entropy) on a generated 3-arm
 * spiral with plain SGD + momentum, using only @vlmoe/tensor: autograd, scopes (flat
 * memory over the loop), seeded RNG. Prints loss and accuracy; exits non-zero if the
 * model fails to learn. Options: --steps N --hidden N --lr X --seed N.
 */
import * as T from '@vlmoe/tensor';
import { Progress } from '@vlmoe/data';

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return dflt;
  const v = Number(process.argv[i + 1]);
  if (!Number.isFinite(v)) throw new Error(`--${name} expects a number, got '${process.argv[i + 1]}'`);
  return v;
}

const steps = arg('steps', 400), hidden = arg('hidden', 128), lr = arg('lr', 0.1), seed = arg('seed', 0);
const classes = 3, perClass = 1000, batch = 256;

/** Spiral: class c's points lie on an arm rotated by 2πc/3, with noise (from seeded draws). */
function spiral(gen: T.Generator): { x: T.Tensor; y: T.Tensor } {
  const n = classes * perClass;
  const [r, noise] = T.scope(() => [
    T.rand([n], { generator: gen }).dataSync() as Float32Array,
    T.randn([n], { generator: gen, std: 0.2 }).dataSync() as Float32Array,
  ]);
  const pts = new Float32Array(2 * n);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; ++i) {
    const c = Math.floor(i / perClass);
    const theta = 4 * r[i]! + (2 * Math.PI * c) / classes + noise[i]!;
    pts[2 * i] = r[i]! * Math.cos(theta);
    pts[2 * i + 1] = r[i]! * Math.sin(theta);
    labels[i] = c;
  }
  return { x: T.tensor(pts, { shape: [n, 2] }), y: T.tensor(labels).long() };
}

const gen = new T.Generator(seed);
const { x, y } = spiral(gen);
x.keep();
y.keep();
const init = (shape: number[], fanIn: number) => T.randn(shape, { generator: gen, std: Math.sqrt(2 / fanIn) }).requiresGrad_();
const params = [init([hidden, 2], 2), T.zeros([hidden]).requiresGrad_(), init([classes, hidden], hidden), T.zeros([classes]).requiresGrad_()];
params.forEach((p) => p.keep());
const velocity = params.map((p) => T.zerosLike(p).keep());
const [w1, b1, w2, b2] = params as [T.Tensor, T.Tensor, T.Tensor, T.Tensor];
const forward = (inp: T.Tensor) => T.linear(T.gelu(T.linear(inp, w1, b1)), w2, b2);

console.log(`native: ${JSON.stringify(T.nativeInfo())}`);
console.log(`training a ${2}-${hidden}-${classes} MLP on ${classes * perClass} spiral points for ${steps} steps (batch ${batch}, lr ${lr})`);
const progress = new Progress('train', steps);
let liveAfterFirst = 0;
let lastLoss = NaN;
for (let step = 1; step <= steps; ++step) {
  lastLoss = T.scope(() => {
    const idx = T.randint(0, classes * perClass, [batch], { generator: gen });
    const loss = T.crossEntropy(forward(T.indexSelect(x, 0, idx)), T.indexSelect(y, 0, idx));
    loss.backward();
    T.noGrad(() => {
      params.forEach((p, i) => {
        velocity[i]!.mul_(0.9).add_(p.grad!);
        p.sub_(velocity[i]!.mul(lr));
        p.zeroGrad();
      });
    });
    return loss.item();
  });
  if (step === 1) liveAfterFirst = T.memory().cpu.live;
  progress.tick(1, `loss ${lastLoss.toFixed(4)}`);
}
progress.finish();
const acc = T.scope(() => T.noGrad(() => forward(x).argmax(-1).eq(y).float().mean().item()));
console.log(`final loss ${lastLoss.toFixed(4)}, train accuracy ${(acc * 100).toFixed(1)}%`);
console.log(`live CPU bytes after step 1: ${liveAfterFirst}, after step ${steps}: ${T.memory().cpu.live} (flat memory)`);
if (!(acc > 0.9)) {
  console.error('the model did not learn the spiral (accuracy <= 90%)');
  process.exit(1);
}

/**
 * Compares our float64 outputs and input gradients with PyTorch's, read from the committed
 * fixtures (test/fixtures/torch_ops.json, made by make_fixtures.py with PyTorch 1.13).
 * Needs no PyTorch at test time.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import * as T from '../src/index.js';
import { expectClose, flat } from './helpers/ref_nn.js';

interface Arr { shape: number[]; data: (number | boolean)[] }
interface Case {
  op: string;
  params: Record<string, unknown>;
  inputs: Record<string, Arr>;
  output: Arr;
  gradOutput: Arr;
  grads: Record<string, Arr>;
}
const fixtures = JSON.parse(readFileSync(new URL('./fixtures/torch_ops.json', import.meta.url), 'utf8')) as { torch: string; cases: Case[] };

function toTensor(op: string, a: Arr, name: string, requiresGrad: boolean): T.Tensor {
  if (typeof a.data[0] === 'boolean') return T.tensor(a.data as boolean[], { shape: a.shape });
  if (op === 'cross_entropy' && name === 'target') return T.tensor(a.data as number[], { dtype: 'int64', shape: a.shape });
  return T.tensor(a.data as number[], { dtype: 'float64', shape: a.shape, requiresGrad });
}

type Fn = (x: Record<string, T.Tensor>, p: Record<string, unknown>) => T.Tensor;
const ops: Record<string, Fn> = {
  gelu: (x, p) => T.gelu(x.x!, p.approximate as 'none' | 'tanh'),
  layer_norm: (x, p) => T.layerNorm(x.x!, p.normalizedShape as number[], x.weight ?? null, x.bias ?? null, p.eps as number),
  log_softmax: (x, p) => T.logSoftmax(x.x!, p.dim as number),
  cross_entropy: (x, p) =>
    T.crossEntropy(x.logits!, x.target!, { reduction: p.reduction as 'mean', labelSmoothing: p.labelSmoothing as number, ignoreIndex: p.ignoreIndex as number }),
  bce_with_logits: (x, p) => T.binaryCrossEntropyWithLogits(x.logits!, x.target!, { reduction: p.reduction as 'mean', posWeight: x.posWeight }),
  sdpa: (x, p) => T.scaledDotProductAttention(x.q!, x.k!, x.v!, { attnMask: x.attnMask, isCausal: p.isCausal as boolean | undefined, scale: p.scale as number | undefined }),
};

describe(`PyTorch ${fixtures.torch} fixtures (float64)`, () => {
  it('has cases for every op', () => {
    expect(new Set(fixtures.cases.map((c) => c.op))).toEqual(new Set(Object.keys(ops)));
  });
  for (const [i, c] of fixtures.cases.entries()) {
    it(`#${i} ${c.op} ${JSON.stringify(c.params)}`, () => {
      T.scope(() => {
        const xs: Record<string, T.Tensor> = {};
        for (const [name, a] of Object.entries(c.inputs)) xs[name] = toTensor(c.op, a, name, name in c.grads);
        const out = ops[c.op]!(xs, c.params);
        expect(out.dtype).toBe('float64');
        expect(out.shape).toEqual(c.output.shape);
        expectClose(flat(out), c.output.data as number[], 1e-12, 1e-10, `${c.op} output`);
        out.backward(T.tensor(c.gradOutput.data as number[], { dtype: 'float64', shape: c.gradOutput.shape }));
        for (const [name, g] of Object.entries(c.grads)) {
          const got = xs[name]!.grad;
          expect(got, `${c.op} grad of ${name}`).not.toBeNull();
          expect(got!.shape).toEqual(g.shape);
          expectClose(flat(got!), g.data as number[], 1e-12, 1e-10, `${c.op} grad of ${name}`);
        }
      });
    });
  }
});

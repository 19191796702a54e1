/**
 * Every nn layer's forward and backward against PyTorch, in float64: weights, inputs,
 * upstream gradients, outputs and gradients come from test/fixtures/torch_nn.safetensors,
 * written by test/fixtures/make_nn_fixtures.py with PyTorch 1.13 (see that script for the
 * naming: 'CASE.<param>' is the state dict, 'CASE/x', 'CASE/y', 'CASE/dx', 'CASE/grad.<param>',
 * and __metadata__[CASE] the module's options). Needs no PyTorch at test time.
 */
import { describe, expect, it } from 'vitest';
import { fileURLToPath } from 'node:url';
import * as T from '../src/index.js';
import { expectClose, flat } from './helpers/ref_nn.js';

const { nn } = T;

// float64 on the CPU library: results differ from PyTorch's only by summation order.
const RTOL = 1e-9;
const ATOL = 1e-10;

const fixture = T.loadFile(fileURLToPath(new URL('./fixtures/torch_nn.safetensors', import.meta.url)));
const F = fixture.tensors;
const { torch: torchVersion, source: _source, ...caseMeta } = fixture.metadata;
const configs = Object.fromEntries(Object.entries(caseMeta).map(([k, v]) => [k, JSON.parse(v) as Config]));

interface Config {
  kind: string;
  [key: string]: unknown;
}

const f64 = { dtype: 'float64' as const };

/** A pre-LN transformer block: x + attn(ln1(x)); x + mlp(ln2(x)), with dropouts that eval() turns off. */
class Block extends nn.Module {
  ln1: InstanceType<typeof nn.LayerNorm>;
  attn: InstanceType<typeof nn.MultiheadSelfAttention>;
  ln2: InstanceType<typeof nn.LayerNorm>;
  mlp: InstanceType<typeof nn.FeedForward>;
  dropPath = new nn.DropPath(0.3);
  constructor(dim: number, heads: number, hidden: number) {
    super();
    this.ln1 = new nn.LayerNorm(dim, f64);
    this.attn = new nn.MultiheadSelfAttention(dim, heads, { ...f64, attnDropout: 0.5, projDropout: 0.5 });
    this.ln2 = new nn.LayerNorm(dim, f64);
    this.mlp = new nn.FeedForward(dim, hidden, { ...f64, dropout: 0.5 });
  }
  forward(x: T.Tensor, mask?: T.Tensor): T.Tensor {
    x = x.add(this.dropPath.forward(this.attn.forward(this.ln1.forward(x), mask)));
    return x.add(this.dropPath.forward(this.mlp.forward(this.ln2.forward(x))));
  }
}

type Inputs = Record<string, T.Tensor>;
interface Built {
  module: T.nn.Module;
  run(x: Inputs): T.Tensor;
}

const build: Record<string, (c: Config) => Built> = {
  linear: (c) => {
    const m = new nn.Linear(c.in as number, c.out as number, { ...f64, bias: c.bias as boolean });
    return { module: m, run: (x) => m.forward(x.x!) };
  },
  layernorm: (c) => {
    const m = new nn.LayerNorm(c.shape as number[], { ...f64, eps: c.eps as number });
    return { module: m, run: (x) => m.forward(x.x!) };
  },
  embedding: (c) => {
    const m = new nn.Embedding(c.num as number, c.dim as number, f64);
    return { module: m, run: (x) => m.forward(x.x!) };
  },
  gelu: (c) => {
    const m = new nn.GELU(c.approximate as 'none' | 'tanh');
    return { module: m, run: (x) => m.forward(x.x!) };
  },
  conv2d: (c) => {
    const m = new nn.Conv2d(c.in as number, c.out as number, c.kernel as number, f64);
    return { module: m, run: (x) => m.forward(x.x!) };
  },
  patch_embed: (c) => {
    const m = new nn.PatchEmbedding(c.in as number, c.dim as number, c.patch as number, f64);
    return { module: m, run: (x) => m.forward(x.x!) };
  },
  attn: (c) => {
    const m = new nn.MultiheadSelfAttention(c.dim as number, c.heads as number, { ...f64, qkvBias: c.qkvBias as 'qv' });
    return { module: m, run: (x) => m.forward(x.x!, x.x2) };
  },
  ffn: (c) => {
    const m = new nn.FeedForward(c.dim as number, c.hidden as number, { ...f64, approximate: c.approximate as 'none' | 'tanh' });
    return { module: m, run: (x) => m.forward(x.x!) };
  },
  layerscale: (c) => {
    const m = new nn.LayerScale(c.dim as number, 0.1, f64);
    return { module: m, run: (x) => m.forward(x.x!) };
  },
  block: (c) => {
    const m = new Block(c.dim as number, c.heads as number, c.hidden as number).eval();
    return { module: m, run: (x) => m.forward(x.x!, x.x2) };
  },
  ce: (c) => {
    const m = new nn.CrossEntropyLoss({ reduction: c.reduction as 'mean', ignoreIndex: c.ignoreIndex as number | undefined, labelSmoothing: c.labelSmoothing as number });
    return { module: m, run: (x) => m.forward(x.x!, x.x2!) };
  },
  bce: (c) => {
    // posWeight is an input of the case (x3), so the module is made when the inputs are known.
    const make = (posWeight?: T.Tensor) => new nn.BCEWithLogitsLoss({ reduction: c.reduction as 'mean', posWeight });
    return { module: make(), run: (x) => make(c.posWeight ? x.x3 : undefined).forward(x.x!, x.x2!) };
  },
  mse: (c) => {
    const m = new nn.MSELoss(c.reduction as 'mean');
    return { module: m, run: (x) => m.forward(x.x!, x.x2!) };
  },
};

function fx(name: string): T.Tensor {
  const t = F[name];
  if (!t) throw new Error(`fixture tensor '${name}' is missing`);
  return t;
}

function expectMatches(got: T.Tensor | null, name: string, what: string): void {
  const want = fx(name);
  expect(got, what).not.toBeNull();
  expect(got!.dtype, `${what} dtype`).toBe('float64');
  expect(got!.shape, `${what} shape`).toEqual(want.shape);
  expectClose(flat(got!), flat(want), ATOL, RTOL, what);
}

describe(`nn layers against PyTorch ${torchVersion} (float64, torch_nn.safetensors)`, () => {
  it('has fixtures for every kind of layer', () => {
    expect(new Set(Object.values(configs).map((c) => c.kind))).toEqual(new Set(Object.keys(build)));
    expect(Object.keys(configs).length).toBeGreaterThanOrEqual(26);
  });

  for (const [name, cfg] of Object.entries(configs)) {
    it(`${name} ${JSON.stringify(cfg)}`, () => {
      const { module, run } = build[cfg.kind]!(cfg);
      try {
        T.scope(() => {
          const prefix = `${name}.`;
          const sd = Object.fromEntries(Object.entries(F).filter(([k]) => k.startsWith(prefix)).map(([k, v]) => [k.slice(prefix.length), v]));
          const res = module.loadStateDict(sd); // strict: throws on a missing or unexpected key
          expect(res).toEqual({ missingKeys: [], unexpectedKeys: [] });
          const params = [...module.namedParameters()];
          expect(params.map(([k]) => k).sort()).toEqual(Object.keys(sd).sort());

          const inputs: Inputs = {};
          for (const k of ['x', 'x2', 'x3']) {
            const t = F[`${name}/${k}`];
            if (!t) continue;
            inputs[k] = `${name}/d${k}` in F ? t.detach().requiresGrad_(true) : t;
          }
          const y = run(inputs);
          expectMatches(y, `${name}/y`, `${name} output`);
          y.backward(fx(`${name}/gy`));
          for (const k of Object.keys(inputs)) {
            if (`${name}/d${k}` in F) expectMatches(inputs[k]!.grad, `${name}/d${k}`, `${name} grad of input ${k}`);
          }
          for (const [k, p] of params) expectMatches(p.grad, `${name}/grad.${k}`, `${name} grad of ${k}`);
        });
      } finally {
        module.dispose();
      }
    });
  }

  it('Dropout and DropPath in eval mode are the identity (forward and backward)', () => {
    T.scope(() => {
      const x0 = fx('block/x');
      const gy = fx('block/gy');
      for (const m of [new nn.Dropout(0.7), new nn.DropPath(0.4), new nn.Identity()]) {
        m.eval();
        const x = x0.detach().requiresGrad_(true);
        const y = m.forward(x);
        expect(y.shape).toEqual(x0.shape);
        expect(flat(y)).toEqual(flat(x0));
        y.backward(gy);
        expect(flat(x.grad!)).toEqual(flat(gy));
      }
    });
  });
});

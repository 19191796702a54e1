/**
 * gradcheck: compares autograd gradients with central finite differences in float64
 * (like torch.autograd.gradcheck). Inputs are cast to float64 leaves; fn must return one
 * tensor. The check uses a random projection of the output (so non-scalar outputs work).
 */
import { noGrad } from './autograd.js';
import { cast, mul } from './ops/elementwise.js';
import { randn } from './ops/creation.js';
import { sum } from './ops/reduce.js';
import { Generator } from './generator.js';
import { isFloating } from './dtype.js';
import { scope } from './scope.js';
import type { Tensor } from './tensor.js';

export interface GradcheckOptions {
  eps?: number;
  atol?: number;
  rtol?: number;
  /** Checks at most this many elements per input (chosen evenly); default all. */
  maxElements?: number;
  seed?: number;
}

export interface GradcheckResult {
  ok: boolean;
  maxAbsError: number;
  /** First mismatch, if any. */
  failure?: { input: number; index: number; analytic: number; numeric: number };
}

export function gradcheck(fn: (...xs: Tensor[]) => Tensor, inputs: Tensor[], opts: GradcheckOptions = {}): GradcheckResult {
  const eps = opts.eps ?? 1e-6, atol = opts.atol ?? 1e-5, rtol = opts.rtol ?? 1e-3;
  return scope(() => {
    const xs = inputs.map((x) => {
      if (!isFloating(x.dtype)) {
        // Index / mask inputs pass through unchanged (they cannot require grad).
        if (x.requiresGrad) throw new Error(`gradcheck: input of dtype ${x.dtype} cannot require grad`);
        return x;
      }
      const d = noGrad(() => cast(x, 'float64')).detach();
      const c = noGrad(() => d.clone());
      if (x.requiresGrad) c.requiresGrad_(true);
      return c;
    });
    const probeShape = noGrad(() => fn(...xs)).shape;
    const w = randn(probeShape, { dtype: 'float64', generator: new Generator(opts.seed ?? 1234) });
    const f = (): number => noGrad(() => sum(mul(fn(...xs), w)).item());
    const out = sum(mul(fn(...xs), w));
    // An output cut from every input (e.g. through detach) has zero analytic gradients.
    if (out.requiresGrad) out.backward();
    let maxAbsError = 0;
    for (let i = 0; i < xs.length; ++i) {
      const x = xs[i]!;
      if (!x.requiresGrad) continue;
      const data = x.data() as Float64Array; // contiguous float64 CPU: a live view
      const analytic = x.grad ? (x.grad.dataSync() as Float64Array) : new Float64Array(x.numel);
      const n = x.numel;
      const step = opts.maxElements && n > opts.maxElements ? n / opts.maxElements : 1;
      for (let kf = 0; kf < n; kf += step) {
        const k = Math.floor(kf);
        const orig = data[k]!;
        data[k] = orig + eps;
        const fp = f();
        data[k] = orig - eps;
        const fm = f();
        data[k] = orig;
        const numeric = (fp - fm) / (2 * eps);
        const a = analytic[k]!;
        const err = Math.abs(a - numeric);
        maxAbsError = Math.max(maxAbsError, err);
        if (!(err <= atol + rtol * Math.abs(numeric))) return { ok: false, maxAbsError, failure: { input: i, index: k, analytic: a, numeric } };
      }
    }
    return { ok: true, maxAbsError };
  });
}

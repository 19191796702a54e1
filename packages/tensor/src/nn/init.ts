/**
 * Seeded in-place initialisers (torch.nn.init names, camelCase). Each takes an optional
 * Generator (default: the global one) and returns the tensor. On a whole tensor made inside
 * `deferredInit` they record the values instead of making them (deferred.ts): the generator
 * advances the same, and the values, once made, are the same.
 */
import { noGrad } from '../autograd.js';
import { defaultGenerator, type Generator } from '../generator.js';
import { randn, uniform as uniformT } from '../ops/creation.js';
import { defer_, writeValues, type InitRecipe } from '../deferred.js';
import { copy_, fill_ } from '../ops/elementwise.js';
import { scope } from '../scope.js';
import { empty, fmtShape, type Tensor } from '../tensor.js';

export interface InitOptions {
  generator?: Generator;
}

/** fan_in and fan_out as PyTorch computes them ([out, in, ...receptive field]). */
export function calculateFans(t: Tensor): { fanIn: number; fanOut: number } {
  if (t.ndim < 2) throw new Error(`calculateFans: needs at least 2 dims, got ${fmtShape(t.shape)}`);
  const receptive = t.shape.slice(2).reduce((a, b) => a * b, 1);
  return { fanIn: t.shape[1]! * receptive, fanOut: t.shape[0]! * receptive };
}

export function zeros_(t: Tensor): Tensor {
  return constant_(t, 0);
}

export function ones_(t: Tensor): Tensor {
  return constant_(t, 1);
}

export function constant_(t: Tensor, value: number): Tensor {
  return defer_(t, () => ({ kind: 'fill', value })) ? t : noGrad(() => fill_(t, value));
}

export function uniform_(t: Tensor, a = 0, b = 1, opts: InitOptions = {}): Tensor {
  const g = opts.generator ?? defaultGenerator;
  if (defer_(t, () => ({ kind: 'uniform', seed: g.seed, counter: g.take(t.numel), low: a, high: b }))) return t;
  return noGrad(() => scope(() => { copy_(t, uniformT(t.shape, a, b, { dtype: t.dtype, device: t.device, generator: g })); return t; }));
}

export function normal_(t: Tensor, mean = 0, std = 1, opts: InitOptions = {}): Tensor {
  const g = opts.generator ?? defaultGenerator;
  if (defer_(t, () => ({ kind: 'normal', seed: g.seed, counter: g.take(t.numel), mean, std }))) return t;
  return noGrad(() => scope(() => { copy_(t, randn(t.shape, { mean, std, dtype: t.dtype, device: t.device, generator: g })); return t; }));
}

/**
 * Normal(mean, std) truncated to [a, b] (absolute bounds, like torch.nn.init.trunc_normal_).
 * Element i is the first of its draws inside [a, b]: draw 0 at Philox counter offset + i of the
 * generator's stream, redraw r at the same counter of an independent stream derived from the
 * seed and r (deferred.ts redrawSeed). The generator advances by numel (as one randn), and
 * every element depends on its index alone, so any part of the tensor can be made on its own.
 */
export function truncNormal_(t: Tensor, opts: InitOptions & { mean?: number; std?: number; a?: number; b?: number } = {}): Tensor {
  const mean = opts.mean ?? 0, std = opts.std ?? 1, a = opts.a ?? -2, b = opts.b ?? 2;
  if (!(a < b)) throw new RangeError(`truncNormal_: a (${a}) must be below b (${b})`);
  if (!(mean + 6 * std > a && mean - 6 * std < b)) throw new RangeError(`truncNormal_: [${a}, ${b}] lies too far from mean ${mean} (std ${std}) to sample`);
  const g = opts.generator ?? defaultGenerator;
  const recipe: InitRecipe = { kind: 'truncNormal', seed: g.seed, counter: g.take(t.numel), mean, std, a, b };
  if (defer_(t, () => recipe)) return t;
  return noGrad(() => scope(() => {
    const x = empty(t.shape, t.dtype, t.device);
    writeValues(x, recipe, 0);
    copy_(t, x);
    return t;
  }));
}

export function xavierUniform_(t: Tensor, gain = 1, opts: InitOptions = {}): Tensor {
  const { fanIn, fanOut } = calculateFans(t);
  const bound = gain * Math.sqrt(6 / (fanIn + fanOut));
  return uniform_(t, -bound, bound, opts);
}

export function xavierNormal_(t: Tensor, gain = 1, opts: InitOptions = {}): Tensor {
  const { fanIn, fanOut } = calculateFans(t);
  return normal_(t, 0, gain * Math.sqrt(2 / (fanIn + fanOut)), opts);
}

export interface KaimingOptions extends InitOptions {
  /** Negative slope of the leaky ReLU (PyTorch's default Linear init uses a = √5). */
  a?: number;
  mode?: 'fanIn' | 'fanOut';
  nonlinearity?: 'leaky_relu' | 'relu' | 'linear';
}

/** The standard deviation He initialisation targets: gain / √fan. */
function kaimingStd(t: Tensor, opts: KaimingOptions): number {
  const { fanIn, fanOut } = calculateFans(t);
  const fan = (opts.mode ?? 'fanIn') === 'fanIn' ? fanIn : fanOut;
  const nl = opts.nonlinearity ?? 'leaky_relu';
  const a = opts.a ?? 0;
  const gain = nl === 'relu' ? Math.SQRT2 : nl === 'linear' ? 1 : Math.sqrt(2 / (1 + a * a));
  return gain / Math.sqrt(fan);
}

/** He uniform: U(-b, b) with b = √3 · std. */
export function kaimingUniform_(t: Tensor, opts: KaimingOptions = {}): Tensor {
  const bound = Math.sqrt(3) * kaimingStd(t, opts);
  return uniform_(t, -bound, bound, opts);
}

/** He normal: N(0, std²). */
export function kaimingNormal_(t: Tensor, opts: KaimingOptions = {}): Tensor {
  return normal_(t, 0, kaimingStd(t, opts), opts);
}

/**
 * Module: the base of every layer, like torch.nn.Module. Parameters, buffers and
 * submodules are found by reflection over the instance's own properties, in definition
 * order (so `this.fc1 = new Linear(...)` registers `fc1`), which gives PyTorch's names:
 * `encoder.layers.0.attn.qkv.weight`.
 */
import { noGrad } from '../autograd.js';
import { copy_ } from '../ops/elementwise.js';
import { toDevice } from '../ops/device.js';
import { keep } from '../scope.js';
import { fmtShape, Tensor } from '../tensor.js';
import { Parameter, parameterFrom } from './parameter.js';

export interface LoadResult {
  missingKeys: string[];
  unexpectedKeys: string[];
}

export abstract class Module {
  /** Training mode (dropout, drop-path active); set through train()/eval(). */
  training = true;
  /** Names of properties that hold buffers (state that is not trained). */
  private readonly _buffers = new Set<string>();

  abstract forward(...args: never[]): unknown;

  /** Registers a non-trainable tensor under `name` (it is kept, saved in stateDict, moved by to()). */
  registerBuffer(name: string, t: Tensor): Tensor {
    keep(t);
    (this as unknown as Record<string, unknown>)[name] = t;
    this._buffers.add(name);
    return t;
  }

  /** Direct children, by property name. */
  *namedChildren(): Generator<[string, Module]> {
    for (const [k, v] of Object.entries(this)) if (v instanceof Module && !k.startsWith('_')) yield [k, v];
  }

  *children(): Generator<Module> {
    for (const [, m] of this.namedChildren()) yield m;
  }

  /** This module and all below it, with dotted names ('' for this one). */
  *namedModules(prefix = ''): Generator<[string, Module]> {
    yield [prefix, this];
    for (const [k, m] of this.namedChildren()) yield* m.namedModules(prefix ? `${prefix}.${k}` : k);
  }

  *modules(): Generator<Module> {
    for (const [, m] of this.namedModules()) yield m;
  }

  /** Own parameters (not recursing), by property name. */
  *ownParameters(): Generator<[string, Parameter]> {
    for (const [k, v] of Object.entries(this)) if (v instanceof Parameter && !k.startsWith('_')) yield [k, v];
  }

  *namedParameters(prefix = ''): Generator<[string, Parameter]> {
    const seen = new Set<Parameter>();
    for (const [mname, m] of this.namedModules(prefix)) {
      for (const [k, p] of m.ownParameters()) {
        if (seen.has(p)) continue; // shared (tied) parameters are listed once
        seen.add(p);
        yield [mname ? `${mname}.${k}` : k, p];
      }
    }
  }

  parameters(): Parameter[] {
    return [...this.namedParameters()].map(([, p]) => p);
  }

  *namedBuffers(prefix = ''): Generator<[string, Tensor]> {
    for (const [mname, m] of this.namedModules(prefix)) {
      for (const k of m._buffers) {
        const t = (m as unknown as Record<string, unknown>)[k];
        if (t instanceof Tensor) yield [mname ? `${mname}.${k}` : k, t];
      }
    }
  }

  /** Number of parameter elements (trainable only by default). */
  numParameters(opts: { trainableOnly?: boolean; filter?: (name: string, p: Parameter) => boolean } = {}): number {
    let n = 0;
    for (const [name, p] of this.namedParameters()) {
      if (opts.trainableOnly && !p.requiresGrad) continue;
      if (opts.filter && !opts.filter(name, p)) continue;
      n += p.numel;
    }
    return n;
  }

  train(mode = true): this {
    for (const m of this.modules()) m.training = mode;
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  /** Calls fn on every module (children first, like PyTorch). */
  apply(fn: (m: Module) => void): this {
    for (const c of this.children()) c.apply(fn);
    fn(this);
    return this;
  }

  /** Clears every parameter's .grad. */
  zeroGrad(): void {
    for (const p of this.parameters()) p.zeroGrad();
  }

  /** Parameters and buffers by dotted name (views of the live tensors, detached). */
  stateDict(): Record<string, Tensor> {
    const out: Record<string, Tensor> = {};
    for (const [k, p] of this.namedParameters()) out[k] = p.detach();
    for (const [k, b] of this.namedBuffers()) out[k] = b.detach();
    return out;
  }

  /**
   * Copies tensors into parameters and buffers by name. strict (default) throws on missing
   * or unexpected keys; shape mismatches always throw, naming the key and both shapes.
   */
  loadStateDict(sd: Record<string, Tensor>, opts: { strict?: boolean } = {}): LoadResult {
    const strict = opts.strict ?? true;
    const targets = new Map<string, Tensor>([...this.namedParameters(), ...this.namedBuffers()]);
    const missingKeys = [...targets.keys()].filter((k) => !(k in sd));
    const unexpectedKeys = Object.keys(sd).filter((k) => !targets.has(k));
    if (strict && (missingKeys.length || unexpectedKeys.length))
      throw new Error(`loadStateDict: ${missingKeys.length ? `missing keys: ${missingKeys.join(', ')}` : ''}${missingKeys.length && unexpectedKeys.length ? '; ' : ''}${unexpectedKeys.length ? `unexpected keys: ${unexpectedKeys.join(', ')}` : ''}`);
    noGrad(() => {
      for (const [k, t] of targets) {
        const src = sd[k];
        if (!src) continue;
        if (src.shape.length !== t.shape.length || src.shape.some((s, i) => s !== t.shape[i]))
          throw new Error(`loadStateDict: '${k}' has shape ${fmtShape(src.shape)} in the state dict but ${fmtShape(t.shape)} in the module`);
        const s = src.device === t.device ? src : toDevice(src, t.device);
        copy_(t, s.dtype === t.dtype ? s : s.to(t.dtype));
      }
    });
    return { missingKeys, unexpectedKeys };
  }

  /** Moves every parameter and buffer to a device (in place: the module now holds new tensors). */
  to(device: string): this {
    for (const m of this.modules()) {
      const rec = m as unknown as Record<string, unknown>;
      for (const [k, p] of [...m.ownParameters()]) {
        if (p.device === device) continue;
        const moved = parameterFrom(noGrad(() => toDevice(p, device)), { requiresGrad: p.requiresGrad, tags: p.tags });
        rec[k] = moved;
        p.dispose();
      }
      for (const k of m._buffers) {
        const b = rec[k];
        if (b instanceof Tensor && b.device !== device) {
          rec[k] = keep(noGrad(() => toDevice(b, device)));
          b.dispose();
        }
      }
    }
    return this;
  }

  /** Frees every parameter and buffer. */
  dispose(): void {
    for (const p of this.parameters()) p.dispose();
    for (const [, b] of this.namedBuffers()) b.dispose();
  }

  /** A one-line-per-module summary, like PyTorch's repr. */
  toString(): string {
    const lines: string[] = [];
    for (const [name, m] of this.namedModules()) {
      const depth = name ? name.split('.').length : 0;
      const own = [...m.ownParameters()].map(([k, p]) => `${k}${fmtShape(p.shape)}`).join(' ');
      lines.push(`${'  '.repeat(depth)}${name ? `(${name.split('.').pop()}): ` : ''}${m.constructor.name}${own ? ` ${own}` : ''}`);
    }
    return lines.join('\n');
  }
}

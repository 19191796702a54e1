/** Containers: Sequential, ModuleList, ModuleDict (children named by index or key). */
import type { Tensor } from '../tensor.js';
import { Module } from './module.js';

type Callable = Module & { forward(x: Tensor): Tensor };

/** Runs its children in order; children are named '0', '1', ... */
export class Sequential extends Module {
  constructor(...modules: Callable[]) {
    super();
    modules.forEach((m, i) => ((this as unknown as Record<string, Module>)[String(i)] = m));
  }
  get length(): number {
    return [...this.namedChildren()].length;
  }
  at(i: number): Callable {
    const m = (this as unknown as Record<string, Callable>)[String(i < 0 ? this.length + i : i)];
    if (!m) throw new RangeError(`Sequential: index ${i} out of range (length ${this.length})`);
    return m;
  }
  forward(x: Tensor): Tensor {
    for (const m of this.children()) x = (m as Callable).forward(x);
    return x;
  }
}

/** A list of modules registered as children '0', '1', ... (iterable). */
export class ModuleList<M extends Module = Module> extends Module {
  private _n = 0;
  constructor(modules: Iterable<M> = []) {
    super();
    for (const m of modules) this.push(m);
  }
  push(m: M): this {
    (this as unknown as Record<string, Module>)[String(this._n++)] = m;
    return this;
  }
  get length(): number {
    return this._n;
  }
  at(i: number): M {
    const j = i < 0 ? this._n + i : i;
    if (j < 0 || j >= this._n) throw new RangeError(`ModuleList: index ${i} out of range (length ${this._n})`);
    return (this as unknown as Record<string, M>)[String(j)]!;
  }
  *[Symbol.iterator](): Iterator<M> {
    for (let i = 0; i < this._n; ++i) yield this.at(i);
  }
  forward(): never {
    throw new Error('ModuleList has no forward(); iterate over its modules');
  }
}

/** Modules by key (keys must be valid names without dots). */
export class ModuleDict<M extends Module = Module> extends Module {
  constructor(modules: Record<string, M> = {}) {
    super();
    for (const [k, m] of Object.entries(modules)) this.set(k, m);
  }
  set(key: string, m: M): this {
    if (key.includes('.') || key.startsWith('_') || key in Module.prototype || key === 'training')
      throw new Error(`ModuleDict: '${key}' cannot be used as a key`);
    (this as unknown as Record<string, Module>)[key] = m;
    return this;
  }
  get(key: string): M {
    const m = (this as unknown as Record<string, unknown>)[key];
    if (!(m instanceof Module)) throw new Error(`ModuleDict: no module '${key}'`);
    return m as M;
  }
  has(key: string): boolean {
    return (this as unknown as Record<string, unknown>)[key] instanceof Module;
  }
  keys(): string[] {
    return [...this.namedChildren()].map(([k]) => k);
  }
  forward(): never {
    throw new Error('ModuleDict has no forward(); look modules up with get(key)');
  }
}

/** FeedForward: Linear(d, hidden) → GELU → dropout → Linear(hidden, d) → dropout. */
import { defaultGenerator, type Generator } from '../generator.js';
import { dropout } from '../ops/dropout.js';
import { gelu } from '../ops/elementwise.js';
import type { Tensor } from '../tensor.js';
import { scope } from '../scope.js';
import type { InitOptions } from './init.js';
import { Linear, type DeviceOptions } from './layers.js';
import { Module } from './module.js';

export class FeedForward extends Module {
  fc1: Linear;
  fc2: Linear;
  private readonly _gen: Generator;
  constructor(readonly dim: number, readonly hidden = 4 * dim, readonly opts: DeviceOptions & InitOptions & { dropout?: number; approximate?: 'none' | 'tanh' } = {}) {
    super();
    this.fc1 = new Linear(dim, hidden, opts);
    this.fc2 = new Linear(hidden, dim, opts);
    this._gen = opts.generator ?? defaultGenerator;
  }
  forward(x: Tensor): Tensor {
    return scope(() => {
      const p = this.opts.dropout ?? 0;
      const h = dropout(gelu(this.fc1.forward(x), this.opts.approximate ?? 'none'), p, this.training, this._gen);
      return dropout(this.fc2.forward(h), p, this.training, this._gen);
    });
  }
}

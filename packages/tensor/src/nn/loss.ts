/** Losses as modules (and mseLoss as a function). */
import { binaryCrossEntropyWithLogits, crossEntropy, type CrossEntropyOptions, type Reduction } from '../ops/loss.js';
import { mul, sub } from '../ops/elementwise.js';
import { mean, sum } from '../ops/reduce.js';
import { fmtShape, type Tensor } from '../tensor.js';
import { Module } from './module.js';

/** Mean (or sum / none) of squared differences. */
export function mseLoss(input: Tensor, target: Tensor, reduction: Reduction = 'mean'): Tensor {
  if (input.ndim !== target.ndim || input.shape.some((s, i) => s !== target.shape[i]))
    throw new Error(`mseLoss: input ${fmtShape(input.shape)} and target ${fmtShape(target.shape)} differ`);
  const d = sub(input, target);
  const sq = mul(d, d);
  return reduction === 'none' ? sq : reduction === 'sum' ? sum(sq) : mean(sq);
}

export class CrossEntropyLoss extends Module {
  constructor(readonly opts: CrossEntropyOptions = {}) {
    super();
  }
  forward(logits: Tensor, target: Tensor): Tensor {
    return crossEntropy(logits, target, this.opts);
  }
}

export class BCEWithLogitsLoss extends Module {
  constructor(readonly opts: { reduction?: Reduction; posWeight?: Tensor } = {}) {
    super();
  }
  forward(logits: Tensor, target: Tensor): Tensor {
    return binaryCrossEntropyWithLogits(logits, target, this.opts);
  }
}

export class MSELoss extends Module {
  constructor(readonly reduction: Reduction = 'mean') {
    super();
  }
  forward(input: Tensor, target: Tensor): Tensor {
    return mseLoss(input, target, this.reduction);
  }
}

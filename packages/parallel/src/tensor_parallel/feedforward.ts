/**
 * A `T.nn.FeedForward` (fc1 → GELU → dropout → fc2 → dropout) split over a tensor-parallel
 * group (Megatron's ParallelMLP): fc1 column-parallel (rank r computes hidden units
 * [r·h/P, (r+1)·h/P)), fc2 row-parallel (partial products all-reduced, bias added once). One
 * all-reduce forward, one backward. The hidden dropout falls inside the split region: each
 * rank applies its units' slice of the mask one process draws for all of them
 * (T.dropoutSlice), so any layout computes what one process computes; the output dropout is
 * replicated and draws the same mask on every rank. Built from the full layer (`fromDense`),
 * with the same generator.
 */
import * as T from '@vlmoe/tensor';
import type { ProcessGroup } from '../process_group.js';
import { ColumnParallelLinear, RowParallelLinear } from './linear.js';

export class ParallelFeedForward extends T.nn.Module {
  fc1: ColumnParallelLinear;
  fc2: RowParallelLinear;
  readonly dim: number;
  readonly hidden: number;
  private readonly _dropout: number;
  private readonly _approximate: 'none' | 'tanh';
  private readonly _gen: T.Generator;

  constructor(readonly group: ProcessGroup, ff: T.nn.FeedForward) {
    super();
    if (ff.hidden % group.size !== 0) throw new Error(`ParallelFeedForward: ${ff.hidden} hidden units do not split over ${group.size} tensor-parallel ranks`);
    this.dim = ff.dim;
    this.hidden = ff.hidden;
    this.fc1 = ColumnParallelLinear.fromDense(ff.fc1, group);
    this.fc2 = RowParallelLinear.fromDense(ff.fc2, group);
    this._dropout = ff.opts.dropout ?? 0;
    this._approximate = ff.opts.approximate ?? 'none';
    this._gen = ff.opts.generator ?? T.defaultGenerator;
    this.training = ff.training;
  }

  static fromDense(ff: T.nn.FeedForward, group: ProcessGroup): ParallelFeedForward {
    return new ParallelFeedForward(group, ff);
  }

  forward(x: T.Tensor): T.Tensor {
    return T.scope(() => {
      const p = this._dropout;
      let h = T.gelu(this.fc1.forward(x), this._approximate);
      if (this.group.size > 1) {
        const whole = [...h.shape.slice(0, -1), this.hidden];
        h = T.dropoutSlice(h, p, this.training, this._gen, { whole, dim: -1, start: this.group.rank * this.fc1.outFeaturesPerRank });
      } else h = T.dropout(h, p, this.training, this._gen);
      return T.dropout(this.fc2.forward(h), p, this.training, this._gen);
    });
  }
}

/**
 * fp16 loss scaling, DeepSpeed's `DynamicLossScaler` / `LossScaler` (deepspeed/runtime/fp16/
 * loss_scaler.py): the loss is multiplied by `scale` before backward so small gradients
 * survive float16; after the reduction the gradients are divided by it again. A step whose
 * gradients overflowed (a non-finite global norm) is skipped. Dynamic scaling: an overflow
 * halves the scale once `hysteresis` overflows have been absorbed (never below
 * `minScale`); `window` steps without an overflow double it. Static: `loss_scale > 0`.
 */
export interface LossScalerOptions {
  /** A fixed scale (DeepSpeed's fp16.loss_scale > 0); 0 or absent: dynamic. */
  static?: number;
  /** Dynamic: the first scale is 2^initialScalePower (DeepSpeed default 16). */
  initialScalePower?: number;
  /** Overflow-free steps before the scale doubles (default 1000). */
  window?: number;
  /** Overflows absorbed before the scale halves (DeepSpeed's delayed shift, default 2). */
  hysteresis?: number;
  /** Floor of the scale (default 1). */
  minScale?: number;
}

export interface LossScalerState {
  scale: number;
  iter: number;
  lastOverflowIter: number;
  hysteresisLeft: number;
}

export class LossScaler {
  readonly dynamic: boolean;
  private readonly window: number;
  private readonly hysteresis: number;
  private readonly minScale: number;
  scale: number;
  private iter = 0;
  private lastOverflowIter = -1;
  private hysteresisLeft: number;

  constructor(o: LossScalerOptions = {}) {
    this.dynamic = !(o.static && o.static > 0);
    this.scale = this.dynamic ? 2 ** (o.initialScalePower ?? 16) : o.static!;
    this.window = o.window ?? 1000;
    this.hysteresis = o.hysteresis ?? 2;
    this.minScale = o.minScale ?? 1;
    this.hysteresisLeft = this.hysteresis;
    for (const [k, v] of [['window', this.window], ['hysteresis', this.hysteresis]] as const)
      if (!(Number.isInteger(v) && v >= 1)) throw new Error(`fp16 loss scaler: ${k} must be an integer ≥ 1, got ${v}`);
    if (!(this.minScale > 0) || !(this.scale > 0) || !Number.isFinite(this.scale)) throw new Error(`fp16 loss scaler: scales must be positive and finite (scale ${this.scale}, min ${this.minScale})`);
  }

  /** After a step's gradients are known: `overflow` when their global norm is not finite. */
  update(overflow: boolean): void {
    if (!this.dynamic) return;
    if (overflow) {
      if (this.hysteresis === 1 || this.hysteresisLeft === 1) this.scale = Math.max(this.scale / 2, this.minScale);
      else this.hysteresisLeft -= 1;
      this.lastOverflowIter = this.iter;
    } else if ((this.iter - this.lastOverflowIter) % this.window === 0) {
      this.hysteresisLeft = this.hysteresis;
      this.scale *= 2;
    }
    this.iter += 1;
  }

  stateDict(): LossScalerState {
    return { scale: this.scale, iter: this.iter, lastOverflowIter: this.lastOverflowIter, hysteresisLeft: this.hysteresisLeft };
  }

  loadStateDict(s: LossScalerState): void {
    this.scale = s.scale;
    this.iter = s.iter;
    this.lastOverflowIter = s.lastOverflowIter;
    this.hysteresisLeft = s.hysteresisLeft;
  }
}

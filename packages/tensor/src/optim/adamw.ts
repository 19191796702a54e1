/**
 * AdamW (torch.optim.AdamW): Adam with decoupled weight decay, p *= 1 - lr * weightDecay
 * before the Adam update (Loshchilov & Hutter). Same kernel as Adam (adam.ts): one fused
 * native call per group and dtype on the CPU.
 */
import { AdamBase, type AdamOptions } from './adam.js';
import type { ParamsInput } from './optimizer.js';

export type AdamWOptions = AdamOptions;

/** torch.optim.AdamW (default weightDecay 0.01, as PyTorch). */
export class AdamW extends AdamBase {
  protected get name(): string {
    return 'AdamW';
  }
  protected get decoupled(): boolean {
    return true;
  }

  constructor(params: ParamsInput<AdamWOptions>, opts: Partial<AdamWOptions> = {}) {
    super(params, { lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 1e-2, amsgrad: false, maximize: false, fused: true, ...opts });
  }
}

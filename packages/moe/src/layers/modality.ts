/**
 * Modality-specific FFNs of a VLMo / VL-MoE block. Every block has one self-attention shared
 * by all tokens and, after it, an FFN chosen per token by modality:
 *
 *   - 'vl'    (VL-FFN):     one FFN for all tokens (VLMo's fusion layers at the top);
 *   - 'split' (V-/L-FFN):   vision tokens go to the vision FFN, text tokens to the text FFN,
 *                           each either dense or a sparse MoE (VL-MoE's lower blocks).
 *
 * Both sides implement `FFNLayer`, so a block is configured, not rewritten: dense or MoE,
 * shared or split. `ModalityFFN.forward(x, modality)` gathers each modality's tokens, runs
 * its FFN on them in one batch, and scatters the outputs back in token order.
 */
import * as T from '@vlmoe/tensor';
import { MoE, type MoEOptions } from './moe_layer.js';

export const VISION = 0;
export const TEXT = 1;

export interface FFNOutput {
  output: T.Tensor;
  /** Scalar balance loss (0 for a dense FFN). */
  auxLoss: T.Tensor;
  /** Scalar router z-loss (0 for a dense FFN). */
  zLoss: T.Tensor;
  /** Assignments dropped by MoE layers. */
  dropped: number;
  /** Per-expert counts of each MoE inside, by name ('vision', 'text', 'shared'). */
  expertCounts: Record<string, T.Tensor>;
  /** Assignments dropped by each MoE inside, by the same names. */
  droppedBy: Record<string, number>;
  /** The router's mean per-token entropy (nats) of each MoE inside, by the same names. */
  entropyBy: Record<string, number>;
  /** LIMoE's weighted entropy regularisers of the MoEs inside, summed (0 for a dense FFN). */
  entropyLoss: T.Tensor;
}

/** What a block's FFN slot accepts: tokens [S, d] → [S, d] plus the MoE bookkeeping. */
export interface FFNLayer extends T.nn.Module {
  /** `sequenceIds`: each token's sequence, for MoE layers with loadBalancingType 'seq_aux_loss'. */
  forward(x: T.Tensor, o?: { sequenceIds?: ArrayLike<number> | null }): FFNOutput;
}

/** A dense FFN (d → h → d) in the FFNLayer interface (auxLoss = zLoss = 0). */
export class DenseFFN extends T.nn.Module implements FFNLayer {
  ffn: T.nn.FeedForward;
  constructor(hiddenSize: number, ffnHiddenSize: number, opts: { dropout?: number; dtype?: 'float32' | 'float64'; generator?: T.Generator } = {}) {
    super();
    this.ffn = new T.nn.FeedForward(hiddenSize, ffnHiddenSize, opts);
  }
  forward(x: T.Tensor): FFNOutput {
    const zero = T.zeros([], { dtype: x.dtype, device: x.device });
    return { output: this.ffn.forward(x), auxLoss: zero, zLoss: zero.clone(), dropped: 0, expertCounts: {}, droppedBy: {}, entropyBy: {}, entropyLoss: zero.clone() };
  }
}

/** A sparse MoE FFN in the FFNLayer interface. */
export class MoEFFN extends T.nn.Module implements FFNLayer {
  moe: MoE;
  constructor(options: MoEOptions, private readonly _name = 'moe') {
    super();
    this.moe = new MoE(options);
  }
  forward(x: T.Tensor, o: { sequenceIds?: ArrayLike<number> | null } = {}): FFNOutput {
    const r = this.moe.forward(x, o);
    return { output: r.output, auxLoss: r.auxLoss, zLoss: r.zLoss, dropped: r.dropped, expertCounts: { [this._name]: r.expertCounts }, droppedBy: { [this._name]: r.dropped }, entropyBy: { [this._name]: r.routerEntropy }, entropyLoss: r.entropyLoss };
  }
}

/** LayerNorm → FFN (VLMo gives every modality FFN its own pre-norm). */
export class NormedFFN extends T.nn.Module implements FFNLayer {
  norm: T.nn.LayerNorm;
  inner: FFNLayer;
  constructor(hiddenSize: number, inner: FFNLayer, opts: { eps?: number; dtype?: 'float32' | 'float64' } = {}) {
    super();
    this.norm = new T.nn.LayerNorm(hiddenSize, { eps: opts.eps ?? 1e-6, dtype: opts.dtype });
    this.inner = inner;
  }
  forward(x: T.Tensor, o: { sequenceIds?: ArrayLike<number> | null } = {}): FFNOutput {
    return this.inner.forward(this.norm.forward(x), o);
  }
}

/** One side of a block's FFN: dense with this hidden size, or an MoE with these options. */
export type FFNSpec = { kind: 'dense'; ffnHiddenSize: number; dropout?: number } | ({ kind: 'moe' } & Omit<MoEOptions, 'hiddenSize'>);

export interface ModalityFFNOptions {
  hiddenSize: number;
  /** 'vl': one FFN (`shared`) for all tokens; 'split': `vision` and `text` FFNs by modality. */
  mode: 'vl' | 'split';
  shared?: FFNSpec;
  vision?: FFNSpec;
  text?: FFNSpec;
  dtype?: 'float32' | 'float64';
  generator?: T.Generator;
  /** Give each side its own LayerNorm before its FFN (VLMo's LN2_m), with this eps. */
  preNorm?: { eps?: number } | null;
}

function build(spec: FFNSpec | undefined, what: string, o: ModalityFFNOptions): FFNLayer {
  const inner = buildBare(spec, what, o);
  return o.preNorm ? new NormedFFN(o.hiddenSize, inner, { eps: o.preNorm.eps, dtype: o.dtype }) : inner;
}

function buildBare(spec: FFNSpec | undefined, what: string, o: ModalityFFNOptions): FFNLayer {
  if (!spec) throw new Error(`ModalityFFN: mode '${o.mode}' needs a '${what}' FFN spec`);
  if (spec.kind === 'dense') return new DenseFFN(o.hiddenSize, spec.ffnHiddenSize, { dropout: spec.dropout, dtype: o.dtype, generator: o.generator });
  if (spec.kind === 'moe') {
    const { kind: _kind, ...rest } = spec;
    return new MoEFFN({ dtype: o.dtype, generator: o.generator, ...rest, hiddenSize: o.hiddenSize }, what);
  }
  throw new Error(`ModalityFFN: ${what}.kind must be 'dense' or 'moe', got '${String((spec as { kind: unknown }).kind)}'`);
}

export class ModalityFFN extends T.nn.Module {
  shared: FFNLayer | null = null;
  vision: FFNLayer | null = null;
  text: FFNLayer | null = null;
  readonly mode: 'vl' | 'split';
  readonly hiddenSize: number;

  constructor(o: ModalityFFNOptions) {
    super();
    if (o.mode !== 'vl' && o.mode !== 'split') throw new RangeError(`ModalityFFN: mode must be 'vl' or 'split', got '${String(o.mode)}'`);
    this.mode = o.mode;
    this.hiddenSize = o.hiddenSize;
    if (o.mode === 'vl') this.shared = build(o.shared, 'shared', o);
    else {
      this.vision = build(o.vision, 'vision', o);
      this.text = build(o.text, 'text', o);
    }
  }

  /**
   * x [..., d]; modality: int tensor or numbers shaped like x without its last dim, 0 =
   * vision (VISION), 1 = text (TEXT). Unused in 'vl' mode. Returns outputs shaped like x.
   */
  forward(x: T.Tensor, modality?: T.Tensor | ArrayLike<number>, o: { sequenceIds?: ArrayLike<number> | null } = {}): FFNOutput {
    const d = this.hiddenSize;
    if (x.shape[x.ndim - 1] !== d) throw new Error(`ModalityFFN: input's last dim must be hiddenSize = ${d}, got shape [${x.shape.join(', ')}]`);
    return T.scope(() => {
      const tokens = x.reshape(-1, d);
      const S = tokens.shape[0]!;
      if (this.shared) {
        const r = this.shared.forward(tokens, o);
        return { ...r, output: r.output.reshape(...x.shape) };
      }
      if (modality === undefined) throw new Error("ModalityFFN: mode 'split' needs the per-token modality (0 = vision, 1 = text)");
      const m = (modality as T.Tensor)._isTensor ? Array.from((modality as T.Tensor).dataSync() as ArrayLike<number | bigint>, Number) : Array.from(modality as ArrayLike<number>, Number);
      if (m.length !== S) throw new Error(`ModalityFFN: modality has ${m.length} entries for ${S} tokens`);
      const vis: number[] = [], txt: number[] = [];
      m.forEach((v, i) => {
        if (v === VISION) vis.push(i);
        else if (v === TEXT) txt.push(i);
        else throw new RangeError(`ModalityFFN: modality of token ${i} is ${v}; expected 0 (vision) or 1 (text)`);
      });
      const parts: T.Tensor[] = [];
      let auxLoss: T.Tensor = T.zeros([], { dtype: x.dtype, device: x.device });
      let zLoss: T.Tensor = T.zeros([], { dtype: x.dtype, device: x.device });
      let entropyLoss: T.Tensor = T.zeros([], { dtype: x.dtype, device: x.device });
      let dropped = 0;
      const expertCounts: Record<string, T.Tensor> = {};
      const droppedBy: Record<string, number> = {};
      const entropyBy: Record<string, number> = {};
      for (const [ids, ffn] of [[vis, this.vision!], [txt, this.text!]] as const) {
        if (!ids.length) continue;
        const seq = o.sequenceIds;
        const r = ffn.forward(T.indexSelect(tokens, 0, T.tensor(ids, { dtype: 'int64', device: x.device })), { sequenceIds: seq ? ids.map((i) => seq[i]!) : null });
        parts.push(r.output);
        auxLoss = T.add(auxLoss, T.cast(r.auxLoss, x.dtype));
        zLoss = T.add(zLoss, T.cast(r.zLoss, x.dtype));
        entropyLoss = T.add(entropyLoss, T.cast(r.entropyLoss, x.dtype));
        dropped += r.dropped;
        Object.assign(expertCounts, r.expertCounts);
        Object.assign(droppedBy, r.droppedBy);
        Object.assign(entropyBy, r.entropyBy);
      }
      // outputs come back as [vision tokens; text tokens]: put them in token order
      const order = [...vis, ...txt];
      const inverse = new Array<number>(S);
      order.forEach((tok, pos) => (inverse[tok] = pos));
      const joined = parts.length === 1 ? parts[0]! : T.cat(parts, 0);
      const output = (order.every((tok, pos) => tok === pos) ? joined : T.indexSelect(joined, 0, T.tensor(inverse, { dtype: 'int64', device: x.device }))).reshape(...x.shape);
      return { output, auxLoss, zLoss, dropped, expertCounts, droppedBy, entropyBy, entropyLoss };
    });
  }
}

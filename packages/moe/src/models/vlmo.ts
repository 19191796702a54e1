/**
 * The VLMo backbone (and VL-MoE, the same backbone with MoE modality FFNs in chosen blocks).
 *
 * Inputs: text ids [B, Lt] (first token [T_CLS], padding masked by `textMask`) and/or images
 * [B, 3, H, W] (patch embedding + [I_CLS]). Token-type embeddings 0 text, 1 image (2 for the
 * second image of NLVR). The sequence is text first, then image. Pre-LN blocks:
 *   x = x + dropPath(γ1 · Attn(LN1(x)))
 *   x = x + dropPath(γ2 · FFN_m(LN2_m(x)))
 * with one self-attention shared by all tokens and modality FFNs: image-only passes use the
 * V-FFN everywhere, text-only passes the L-FFN, fused passes split tokens between V-FFN and
 * L-FFN in the lower blocks and send all tokens to the VL-FFN in the top `vlBlocks`.
 */
import * as T from '@vlmoe/tensor';
import { VocabParallelEmbedding, type ProcessGroup, type TensorParallelModule } from '@vlmoe/parallel';
import { TopKGate } from '../router/gate.js';
import { expertLayout } from '../layers/moe_layer.js';
import { DenseFFN, ModalityFFN, NormedFFN, TEXT, VISION, type FFNLayer, type FFNSpec } from '../layers/modality.js';
import { resolveVLMoConfig, type ResolvedVLMoConfig, type VLMoConfig } from './config.js';

export type Pass = 'image' | 'text' | 'fused';

export interface VLMoInput {
  /** int [B, Lt] token ids (text passes). */
  textIds?: T.Tensor;
  /** [B, Lt] 1 = real token, 0 = padding (default: all real). */
  textMask?: T.Tensor;
  /** [B, 3, H, W] (image passes). */
  image?: T.Tensor;
  /** Token type of the image tokens (default 1; NLVR's second image uses 2). */
  imageTokenType?: number;
  /**
   * Where the batch's rows sit in the global batch of a data-parallel step: stochastic depth
   * then drops a sample the same way on any number of ranks (see `T.nn.SampleIndex`).
   */
  samples?: T.nn.SampleIndex;
}

export interface VLMoOutput {
  /** [B, L, d] after the final LayerNorm: text tokens first, then image tokens. */
  hidden: T.Tensor;
  textLen: number;
  imageLen: number;
  pass: Pass;
  /** Summed balance and z losses of every MoE layer (unweighted) and the weighted sum (with the layers' weighted LIMoE entropy regularisers). */
  auxLoss: T.Tensor;
  zLoss: T.Tensor;
  moeLoss: T.Tensor;
  /** Assignments dropped over all MoE layers. */
  dropped: number;
  /** Per-expert counts per MoE layer (before capacity): `blocks.<i>.<vision|text>`. */
  expertCounts: Record<string, T.Tensor>;
  /** Assignments dropped per MoE layer, same keys. */
  droppedBy: Record<string, number>;
  /** The router's mean per-token entropy (nats) per MoE layer, same keys. */
  entropyBy: Record<string, number>;
}

class VLMoBlock extends T.nn.Module {
  norm1: T.nn.LayerNorm;
  attn: T.nn.MultiheadSelfAttention;
  gamma1: T.nn.LayerScale | null;
  gamma2: T.nn.LayerScale | null;
  dropPath: T.nn.DropPath;
  ffn: ModalityFFN;
  vl: FFNLayer | null = null;

  constructor(readonly index: number, c: ResolvedVLMoConfig, gen: T.Generator) {
    super();
    const d = c.dim, dtype = c.dtype;
    this.norm1 = new T.nn.LayerNorm(d, { eps: 1e-6, dtype });
    this.attn = new T.nn.MultiheadSelfAttention(d, c.heads, { qkvBias: 'qv', dtype, generator: gen });
    this.gamma1 = c.layerScale === null ? null : new T.nn.LayerScale(d, c.layerScale, { dtype });
    this.gamma2 = c.layerScale === null ? null : new T.nn.LayerScale(d, c.layerScale, { dtype });
    this.dropPath = new T.nn.DropPath(c.depth > 1 ? (c.dropPath * index) / (c.depth - 1) : 0, gen);
    const moe = c.moe && c.moe.blocks.includes(index) ? c.moe : null;
    const side = (): FFNSpec => {
      if (!moe) return { kind: 'dense', ffnHiddenSize: c.ffnHidden };
      const { blocks: _blocks, auxLossWeight: _aux, zLossWeight: _z, ...layer } = moe; // every layer option, resolved
      return { kind: 'moe', ...layer, ffnHiddenSize: c.ffnHidden };
    };
    this.ffn = new ModalityFFN({ hiddenSize: d, mode: 'split', vision: side(), text: side(), preNorm: { eps: 1e-6 }, dtype, generator: gen });
    if (index >= c.depth - c.vlBlocks) this.vl = new NormedFFN(d, new DenseFFN(d, c.ffnHidden, { dtype, generator: gen }), { eps: 1e-6, dtype });
  }

  forward(x: T.Tensor, modality: number[], sequenceIds: number[], pass: Pass, mask: T.Tensor | undefined, samples: T.nn.SampleIndex | undefined, acc: { aux: T.Tensor[]; z: T.Tensor[]; ent: T.Tensor[]; dropped: number; counts: Record<string, T.Tensor>; drops: Record<string, number>; entropy: Record<string, number> }): T.Tensor {
    const [B, L, d] = x.shape as [number, number, number];
    x = T.recordFunction('attention', () => {
      let a = this.attn.forward(this.norm1.forward(x), mask);
      if (this.gamma1) a = this.gamma1.forward(a);
      return T.add(x, this.dropPath.forward(a, samples));
    });
    const flat = x.reshape(B * L, d);
    const r = T.recordFunction('ffn', () => (pass === 'fused' && this.vl ? this.vl.forward(flat) : this.ffn.forward(flat, modality, { sequenceIds })));
    acc.aux.push(r.auxLoss);
    acc.z.push(r.zLoss);
    acc.ent.push(r.entropyLoss);
    acc.dropped += r.dropped;
    for (const [k, v] of Object.entries(r.expertCounts)) acc.counts[`blocks.${this.index}.${k}`] = v;
    for (const [k, v] of Object.entries(r.droppedBy)) acc.drops[`blocks.${this.index}.${k}`] = v;
    for (const [k, v] of Object.entries(r.entropyBy)) acc.entropy[`blocks.${this.index}.${k}`] = v;
    let f = r.output.reshape(B, L, d);
    if (this.gamma2) f = this.gamma2.forward(f);
    return T.add(x, this.dropPath.forward(f, samples));
  }
}

export class VLMo extends T.nn.Module implements TensorParallelModule {
  readonly config: ResolvedVLMoConfig;
  /** The word embedding; vocab-parallel over a tensor-parallel group (`setTensorParallelGroup`, called by the engine). */
  textEmbed: T.nn.Embedding | VocabParallelEmbedding;
  textPos: T.nn.Parameter;
  typeEmbed: T.nn.Embedding;
  patchEmbed: T.nn.PatchEmbedding;
  imageCls: T.nn.Parameter;
  imagePos: T.nn.Parameter;
  blocks: T.nn.ModuleList;
  norm: T.nn.LayerNorm;

  constructor(config: VLMoConfig, opts: { generator?: T.Generator } = {}) {
    super();
    const c = (this.config = resolveVLMoConfig(config));
    const gen = opts.generator ?? new T.Generator(0);
    const d = c.dim, dtype = c.dtype;
    const trunc = (shape: number[]) => T.nn.parameterFrom(T.nn.init.truncNormal_(T.empty(shape, { dtype }), { std: 0.02, generator: gen }));
    this.textEmbed = new T.nn.Embedding(c.vocabSize, d, { dtype, generator: gen });
    T.nn.init.truncNormal_(this.textEmbed.weight, { std: 0.02, generator: gen });
    this.textPos = trunc([c.maxTextLen, d]);
    this.typeEmbed = new T.nn.Embedding(3, d, { dtype, generator: gen });
    T.nn.init.truncNormal_(this.typeEmbed.weight, { std: 0.02, generator: gen });
    this.patchEmbed = new T.nn.PatchEmbedding(3, d, c.patchSize, { dtype, generator: gen });
    this.imageCls = trunc([1, 1, d]);
    this.imagePos = trunc([1 + c.numPatches, d]);
    this.blocks = new T.nn.ModuleList(Array.from({ length: c.depth }, (_, i) => new VLMoBlock(i, c, gen)));
    this.norm = new T.nn.LayerNorm(d, { eps: 1e-6, dtype });
  }

  /** Splits the word embedding by vocabulary over `group` (Megatron's VocabParallelEmbedding); attention and FFNs are split by the engine. */
  setTensorParallelGroup(group: ProcessGroup): void {
    if (group.size === 1 || this.textEmbed instanceof VocabParallelEmbedding) return;
    const dense = this.textEmbed;
    this.textEmbed = VocabParallelEmbedding.fromDense(dense, group);
    for (const p of dense.parameters()) p.dispose();
  }

  /**
   * The aux-loss-free expert bias of every MoE layer that has one (enableExpertBias), by the
   * keys of `expertCounts` (`blocks.<i>.<vision|text>`): views of the gates' buffers.
   */
  expertBiases(): Record<string, T.Tensor> {
    const out: Record<string, T.Tensor> = {};
    for (const blk of this.blocks.children()) {
      const b = blk as VLMoBlock;
      for (const [name, f] of [['vision', b.ffn.vision], ['text', b.ffn.text], ['shared', b.ffn.shared]] as const) {
        // the side's MoE (under its pre-norm wrapper)
        const gate = f ? [...f.modules()].find((m): m is TopKGate => m instanceof TopKGate) : undefined;
        if (gate?.expertBias) out[`blocks.${b.index}.${name}`] = gate.expertBias;
      }
    }
    return out;
  }

  /** Parameter counts of this module: total, and active per token (unrouted experts excluded). */
  parameterCount(): { total: number; active: number } {
    let total = 0, inactive = 0;
    for (const p of this.parameters()) total += p.numel;
    const m = this.config.moe;
    if (m) {
      const lay = expertLayout(m, this.config.ffnHidden), he = lay.ffnHiddenSize;
      const per = 2 * this.config.dim * he + he + this.config.dim;
      inactive = m.blocks.length * 2 * (lay.numExperts - lay.k) * per;
    }
    return { total, active: total - inactive };
  }

  private embedText(ids: T.Tensor): T.Tensor {
    const [, Lt] = ids.shape as [number, number];
    if (Lt > this.config.maxTextLen) throw new Error(`VLMo: text of ${Lt} tokens is longer than maxTextLen ${this.config.maxTextLen}`);
    const tok = this.textEmbed.forward(ids);
    const pos = this.textPos.narrow(0, 0, Lt);
    return T.add(T.add(tok, pos), this.typeRow(0));
  }

  private embedImage(image: T.Tensor, type: number): T.Tensor {
    const c = this.config;
    if (image.ndim !== 4 || image.shape[1] !== 3 || image.shape[2] !== c.imageSize || image.shape[3] !== c.imageSize)
      throw new Error(`VLMo: image must be [B, 3, ${c.imageSize}, ${c.imageSize}], got [${image.shape.join(', ')}]`);
    const B = image.shape[0]!;
    const patches = this.patchEmbed.forward(image.dtype === c.dtype ? image : T.cast(image, c.dtype));
    const cls = this.imageCls.expand(B, 1, c.dim);
    const seq = T.cat([cls, patches], 1);
    return T.add(T.add(seq, this.imagePos), this.typeRow(type));
  }

  /** The token-type embedding of `type`, [1, 1, d], through the embedding's forward (so ZeRO-3 gathers its table there). */
  private typeRow(type: number): T.Tensor {
    return this.typeEmbed.forward(T.tensor([[type]], { dtype: 'int64', device: this.typeEmbed.weight.device }));
  }

  forward(input: VLMoInput): VLMoOutput {
    const { textIds, image } = input;
    if (!textIds && !image) throw new Error('VLMo: give textIds, image, or both');
    const pass: Pass = textIds && image ? 'fused' : image ? 'image' : 'text';
    const parts: T.Tensor[] = [];
    let textLen = 0, imageLen = 0, B = 0;
    if (textIds) {
      if (textIds.ndim !== 2) throw new Error(`VLMo: textIds must be [B, L], got [${textIds.shape.join(', ')}]`);
      B = textIds.shape[0]!;
      textLen = textIds.shape[1]!;
      parts.push(T.recordFunction('embeddings', () => this.embedText(textIds)));
    }
    if (image) {
      if (B && image.shape[0] !== B) throw new Error(`VLMo: ${B} texts but ${image.shape[0]} images`);
      B = image.shape[0]!;
      const e = T.recordFunction('embeddings', () => this.embedImage(image, input.imageTokenType ?? 1));
      imageLen = e.shape[1]!;
      parts.push(e);
    }
    let x = parts.length === 1 ? parts[0]! : T.cat(parts, 1);
    const L = textLen + imageLen;
    // key-padding mask for text padding: [B, 1, 1, L], true = attend
    let mask: T.Tensor | undefined;
    if (textIds && input.textMask) {
      const keep = T.ne(input.textMask, 0);
      mask = (imageLen ? T.cat([keep, T.full([B, imageLen], 1, { dtype: 'bool', device: keep.device })], 1) : keep).reshape(B, 1, 1, L);
    }
    const rowModality = [...new Array<number>(textLen).fill(TEXT), ...new Array<number>(imageLen).fill(VISION)];
    const modality: number[] = [];
    for (let b = 0; b < B; b++) modality.push(...rowModality);
    const acc = { aux: [] as T.Tensor[], z: [] as T.Tensor[], ent: [] as T.Tensor[], dropped: 0, counts: {} as Record<string, T.Tensor>, drops: {} as Record<string, number>, entropy: {} as Record<string, number> };
    // each token's sample (the sequences of a sequence-wise balance loss), made once for every block
    const sequenceIds = modality.map((_, i) => Math.floor(i / L));
    for (const blk of this.blocks.children()) x = (blk as VLMoBlock).forward(x, modality, sequenceIds, pass, mask, input.samples, acc);
    const hidden = this.norm.forward(x);
    const sum = (ts: T.Tensor[]) => ts.reduce((a, b) => T.add(a, b), T.zeros([], { dtype: this.config.dtype, device: hidden.device }));
    const auxLoss = sum(acc.aux), zLoss = sum(acc.z);
    const m = this.config.moe;
    // the layers' LIMoE entropy regularisers come weighted by the layers' own options
    const moeLoss = m ? T.add(T.add(T.mul(auxLoss, m.auxLossWeight), T.mul(zLoss, m.zLossWeight)), T.cast(sum(acc.ent), this.config.dtype)) : T.mul(auxLoss, 0);
    return { hidden, textLen, imageLen, pass, auxLoss, zLoss, moeLoss, dropped: acc.dropped, expertCounts: acc.counts, droppedBy: acc.drops, entropyBy: acc.entropy };
  }
}

/** The expert biases of every VL-MoE backbone inside `model` (VLMo.expertBiases), as numbers. */
export function expertBiasesOf(model: T.nn.Module): Record<string, number[]> {
  const out: Record<string, number[]> = {};
  for (const m of model.modules()) if (m instanceof VLMo) for (const [k, t] of Object.entries(m.expertBiases())) out[k] = Array.from(t.dataSync() as Float32Array);
  return out;
}

/**
 * The shape of a VL-MoE pretraining model as the planner sees it, without building it: every
 * parameter tensor (elements, whether it is an expert tensor, whether tensor parallelism splits
 * it) and the tokens one sample sends through each block's FFNs in one pretraining step.
 *
 * The parameter list mirrors `VLMoPretrainer` tensor by tensor (tested against the module: the
 * same multiset of sizes and tags, and the split elements the engine reports at TP 2). The
 * passes mirror `VLMoPretrainer.losses`: an image-only and a text-only pass (ITC), then four
 * fused image-text passes (the MLM pass on masked text, and the ITM positive, image-negative
 * and text-negative passes). In a fused pass the top `vlBlocks` blocks run the VL-FFN; the
 * others run the V-FFN on image tokens and the L-FFN on text tokens, as the single-modality
 * passes do everywhere.
 */
import { resolveVLMoConfig, type ResolvedVLMoConfig, type VLMoConfig } from '../models/config.js';

/** One parameter tensor. */
export interface PlanParam {
  numel: number;
  /** Tagged `expert`: spread over the expert-parallel group, reduced over expert-data-parallel ranks. */
  expert: boolean;
  /** Split over the tensor-parallel group (attention, dense FFNs, word embedding, MLM decoder). */
  split: boolean;
  /** Forward calls of its module in one step (micro batch): what ZeRO-3 gathers it for, besides once in backward. */
  uses: number;
}

/** What one block's FFNs see per sample in one step. */
export interface PlanBlock {
  /** Tokens per sample through a dense FFN of this block (all passes). */
  denseTokens: number;
  /** Tokens per sample through an MoE FFN of this block (all passes). */
  moeTokens: number;
  /** Tokens per sample through the block (attention), and Σ tokens × sequence length (attention scores). */
  tokens: number;
  tokenSeq: number;
  /** MoE FFNs in this block (V and L sides); one of the top `vlBlocks` (its VL-FFN runs the fused passes). */
  moe: boolean;
  vl: boolean;
}

/** One backbone pass of a step, per sample. */
export interface PlanPass {
  name: string;
  tokens: number;
  image: number;
  text: number;
  fused: boolean;
}

export interface PlanShape {
  config: ResolvedVLMoConfig;
  params: PlanParam[];
  blocks: PlanBlock[];
  /** Backbone passes of one step, per sample. */
  passes: PlanPass[];
  /** Text tokens per sample the MLM head scores (every position of the masked-text pass). */
  mlmTokens: number;
}

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

export function planShape(c: VLMoConfig): PlanShape {
  const r = resolveVLMoConfig(c);
  if (r.moe && (r.moe.expertSizeRatio > 1 || r.moe.sharedExperts > 0)) throw new Error('vlmoe plan: fine-grained (expertSizeRatio > 1) and shared experts (sharedExperts > 0) are not in the planner yet; plan the model without them');
  const d = r.dim, h = r.ffnHidden, V = r.vocabSize, E = r.moe?.numExperts ?? 0;
  const params: PlanParam[] = [];
  // forward calls per step of the module being listed (6 backbone passes: image, text, 4 fused; see the file comment)
  let uses = 6;
  const add = (numel: number, o: { expert?: boolean; split?: boolean } = {}) => params.push({ numel, expert: o.expert ?? false, split: o.split ?? false, uses });
  const norm = () => (add(d), add(d));
  const ffn = () => (add(h * d, { split: true }), add(h, { split: true }), add(d * h, { split: true }), add(d));
  // embeddings: word (vocabulary-split; the 5 passes with text), text position (the backbone's own), type (once per modality a pass has), patch conv (5 passes with images), [I_CLS] and image position
  uses = 5;
  add(V * d, { split: true });
  uses = 6;
  add(r.maxTextLen * d);
  uses = 10;
  add(3 * d);
  uses = 5;
  add(3 * r.patchSize * r.patchSize * d);
  add(d);
  uses = 6;
  add(d);
  add((1 + r.numPatches) * d);
  for (let b = 0; b < r.depth; b++) {
    const vlHere = b >= r.depth - r.vlBlocks;
    uses = 6;
    norm();
    add(d, { split: true }), add(d, { split: true }), add(3 * d * d, { split: true }), add(d * d, { split: true }), add(d); // q/v biases, qkv, proj, proj bias
    if (r.layerScale !== null) (add(d), add(d));
    const moeHere = !!r.moe && r.moe.blocks.includes(b);
    for (let side = 0; side < 2; side++) {
      uses = vlHere ? 1 : 5; // the modality FFN: its single-modality pass, and the fused passes below the VL blocks
      norm();
      if (moeHere) {
        add(E * d); // the router
        add(E * d * h, { expert: true }), add(E * h, { expert: true }), add(E * h * d, { expert: true }), add(E * d, { expert: true });
        if (r.moe!.useResidual) (ffn(), add(2 * d), add(2));
      } else ffn();
    }
    uses = 4;
    if (vlHere) (norm(), ffn());
  }
  uses = 6;
  norm();
  // heads: pooler (the 3 ITM passes), ITC (scale, two projections), ITM, MLM (transform, norm, vocabulary-split decoder)
  uses = 3;
  add(d * d), add(d);
  uses = 1;
  add(1), add(d * d), add(d * d);
  add(2 * d), add(2);
  add(d * d), add(d), add(d), add(d), add(V * d, { split: true }), add(V, { split: true });
  // the step's passes (VLMoPretrainer.losses)
  const img = 1 + r.numPatches, txt = r.maxTextLen;
  const passes: PlanPass[] = [{ name: 'image', tokens: img, image: img, text: 0, fused: false }, { name: 'text', tokens: txt, image: 0, text: txt, fused: false }];
  for (const name of ['mlm', 'itm-pos', 'itm-neg-image', 'itm-neg-text']) passes.push({ name, tokens: img + txt, image: img, text: txt, fused: true });
  const blocks: PlanBlock[] = [];
  for (let b = 0; b < r.depth; b++) {
    const moeHere = !!r.moe && r.moe.blocks.includes(b), vl = b >= r.depth - r.vlBlocks;
    let dense = 0, moe = 0;
    for (const p of passes) {
      if (p.fused && vl) dense += p.tokens;
      else if (moeHere) moe += p.tokens;
      else dense += p.tokens;
    }
    blocks.push({ denseTokens: dense, moeTokens: moe, tokens: sum(passes.map((p) => p.tokens)), tokenSeq: sum(passes.map((p) => p.tokens * p.tokens)), moe: moeHere, vl });
  }
  return { config: r, params, blocks, passes, mlmTokens: txt };
}

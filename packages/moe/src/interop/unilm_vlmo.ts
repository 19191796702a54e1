/**
 * Checkpoints of microsoft/unilm's VLMo (vlmo/vlmo/modules: vlmo_module.py,
 * multiway_transformer.py, heads.py) ↔ our VLMo / VL-MoE state dicts.
 *
 * The backbone's blocks are the same computation under other names (see `vlmoRules` and the
 * table in packages/moe/README.md): `transformer.blocks.<i>.{norm1, attn.qkv, attn.q_bias,
 * attn.v_bias, attn.proj, gamma_1, gamma_2, norm2_imag, mlp_imag, norm2_text, mlp_text,
 * norm2_vl, mlp_vl}`, `transformer.{patch_embed.proj, cls_token, pos_embed, norm}`,
 * `text_embeddings.{word_embeddings, position_embeddings}`, `token_type_embeddings`, and the
 * heads `pooler`, `itc_{image,text}_proj`, `logit_scale`, `itm_score`, `mlm_score`,
 * `vqa_classifier`, `nlvr2_classifier`. VL-MoE's MoE FFNs keep VLMo's module names with
 * DeepSpeed's MoE inside (`mlp_imag.deepspeed_moe.gate.wg.weight`,
 * `mlp_imag.deepspeed_moe.experts.deepspeed_experts.<e>.fc1.weight`, …; deepspeed_moe.ts).
 *
 * Where the models differ, a conversion says so instead of dropping anything:
 * - unilm's text embedding is HF BertEmbeddings: LayerNorm(word + position + BERT token type
 *   0); ours is word + position with no LayerNorm and no BERT token-type table. On import
 *   `text_embeddings.LayerNorm.*` and `text_embeddings.token_type_embeddings.weight` are
 *   errors (no counterpart) unless ignored; exports do not write them, so unilm's model
 *   would keep its own initial values there and compute differently.
 * - VLMo base / large use a relative position bias (`relative_position_bias_table`) and no
 *   absolute image position embedding (`transformer.pos_embed`, only in the
 *   `use_abs_pos_emb` variants); ours uses absolute embeddings. Importing such a checkpoint
 *   needs `ignore: ['relative_position_bias_table']` and `fill: {'backbone.imagePos': …}`.
 *   Text position embeddings exist in both, but with relative position bias unilm's
 *   BertEmbeddings does not add them.
 * - `itc_vl_{text,image}_proj`, `logit_vl_scale` (VLMo's contrastive head on VL-FFN outputs,
 *   for hard-negative sampling) have no counterpart; `text_embeddings.position_ids` is a
 *   buffer.
 * - Token types: ours has 3 rows (text, image, NLVR's second image); VLMo has 2 (3 after NLVR2
 *   fine-tuning). Import of 2 rows sets our row 2 = row 1 (what VLMo's NLVR2 model does);
 *   export writes 2 rows unless the state dict has an NLVR head or `tokenTypes: 3`.
 */
import * as T from '@vlmoe/tensor';
import { resolveVLMoConfig, type ResolvedVLMoConfig, type VLMoConfig } from '../models/config.js';
import { expertLayout } from '../layers/moe_layer.js';
import { deepspeedMoeRules } from './deepspeed_moe.js';
import { convertKeys, type ConvertOptions, type KeyRule, type NoCounterpart } from './key_map.js';

export interface VlmoImportOptions extends ConvertOptions {
  /** Key prefix of the backbone in our state dict (default 'backbone.', as VLMoPretrainer and the task models; '' for a bare VLMo). */
  prefix?: string;
}

export interface VlmoExportOptions {
  /** Key prefix of the backbone in our state dict (default: 'backbone.', or '' when the state dict is a bare VLMo's). */
  prefix?: string;
  /** Rows of `token_type_embeddings` to write (default 3 with an NLVR head, else 2: VLMo's models have 2). */
  tokenTypes?: 2 | 3;
  /** Our keys to leave out knowingly (exact, or prefixes ending in '*'). */
  ignore?: string[];
}

/** Which heads a state dict has (detected from its keys). */
interface Heads {
  pooler: boolean;
  itc: boolean;
  itm: boolean;
  mlm: boolean;
  /** VQA answers, or null. */
  vqa: number | null;
  nlvr: boolean;
}

/** unilm keys our model cannot hold, and why. */
/** Our keys the other side has no place for (export). */
export const OURS_ONLY: NoCounterpart[] = [
  { key: /gate\.expertBias$/, reason: "the router's aux-loss-free expert bias (enableExpertBias): DeepSpeed's MoE and VLMo route without one" },
  { key: /\.moe\.shared\./, reason: "DeepSeekMoE's shared experts (sharedExperts): DeepSpeed's MoE and VLMo have none" },
];

const THEIRS_ONLY: NoCounterpart[] = [
  { key: 'relative_position_bias_table', reason: 'VLMo base/large use a relative position bias; our model uses absolute position embeddings (a choice, REFERENCE §2) and has no relative bias' },
  { key: /^text_embeddings\.LayerNorm\.(weight|bias)$/, reason: "unilm's text embedding (HF BertEmbeddings) applies a LayerNorm to word + position + BERT token type; ours adds word and position embeddings without one" },
  { key: 'text_embeddings.token_type_embeddings.weight', reason: "BERT's own token-type table inside BertEmbeddings; ours has only VLMo's token_type_embeddings" },
  { key: 'text_embeddings.position_ids', reason: 'a buffer (positions 0..L−1), not a weight' },
  { key: /^itc_vl_(text|image)_proj\.fc\.weight$/, reason: "VLMo's second contrastive head on the VL-FFN outputs (for hard-negative sampling); ours samples hard negatives from the ITC head" },
  { key: 'logit_vl_scale', reason: "the temperature of VLMo's VL-FFN contrastive head (itc_vl_*), which ours does not have" },
];

/** The MoE modules of the unilm-named VL-MoE in DeepSpeed's layer order (named_modules order: mlp_text before mlp_imag in each block). */
export function vlmoMoELayers(config: VLMoConfig): string[] {
  const c = resolveVLMoConfig(config);
  return c.moe ? c.moe.blocks.flatMap((b) => [`transformer.blocks.${b}.mlp_text`, `transformer.blocks.${b}.mlp_imag`]) : [];
}

/** The rules for a config, our backbone prefix, the heads present and the token-type rows of the checkpoint. */
export function vlmoRules(c: ResolvedVLMoConfig, prefix: string, heads: Heads, tokenTypes: 2 | 3): KeyRule[] {
  const d = c.dim, h = c.ffnHidden, P = prefix;
  const rules: KeyRule[] = [];
  const same = (ours: string, theirs: string, shape: number[], note?: string) => rules.push({ ours, oursShape: shape, theirs: [theirs], theirsShapes: [shape], note });
  const linear = (ours: string, theirs: string, out: number, inp: number, bias = true) => {
    same(`${ours}.weight`, `${theirs}.weight`, [out, inp]);
    if (bias) same(`${ours}.bias`, `${theirs}.bias`, [out]);
  };
  const ln = (ours: string, theirs: string, n = d) => {
    same(`${ours}.weight`, `${theirs}.weight`, [n]);
    same(`${ours}.bias`, `${theirs}.bias`, [n]);
  };
  // embeddings
  same(`${P}textEmbed.weight`, 'text_embeddings.word_embeddings.weight', [c.vocabSize, d]);
  same(`${P}textPos`, 'text_embeddings.position_embeddings.weight', [c.maxTextLen, d], 'unilm adds these only with absolute text positions (no relative position bias)');
  rules.push({
    ours: `${P}typeEmbed.weight`, oursShape: [3, d], theirs: ['token_type_embeddings.weight'], theirsShapes: [[tokenTypes, d]],
    toOurs: tokenTypes === 3 ? undefined : ([t]) => T.cat([t!, t!.narrow(0, 1, 1)], 0),
    toTheirs: tokenTypes === 3 ? undefined : (t) => [t.narrow(0, 0, 2)],
    note: 'ours has 3 token types (text, image, second NLVR image); VLMo has 2 outside NLVR2, whose row 2 starts as a copy of row 1',
  });
  same(`${P}patchEmbed.proj.weight`, 'transformer.patch_embed.proj.weight', [d, 3, c.patchSize, c.patchSize]);
  same(`${P}patchEmbed.proj.bias`, 'transformer.patch_embed.proj.bias', [d]);
  same(`${P}imageCls`, 'transformer.cls_token', [1, 1, d]);
  rules.push({
    ours: `${P}imagePos`, oursShape: [1 + c.numPatches, d], theirs: ['transformer.pos_embed'], theirsShapes: [[1, 1 + c.numPatches, d]],
    toOurs: ([t]) => t!.reshape(1 + c.numPatches, d), toTheirs: (t) => [t.reshape(1, 1 + c.numPatches, d)],
    note: "unilm's pos_embed exists only with use_abs_pos_emb (VLMo base/large use relative position bias instead: fill 'backbone.imagePos' to import those)",
  });
  // blocks
  for (let i = 0; i < c.depth; i++) {
    const B = `${P}blocks.${i}.`, U = `transformer.blocks.${i}.`;
    ln(`${B}norm1`, `${U}norm1`);
    same(`${B}attn.qkv.weight`, `${U}attn.qkv.weight`, [3 * d, d]);
    same(`${B}attn.qBias`, `${U}attn.q_bias`, [d]);
    same(`${B}attn.vBias`, `${U}attn.v_bias`, [d]);
    linear(`${B}attn.proj`, `${U}attn.proj`, d, d);
    if (c.layerScale !== null) {
      same(`${B}gamma1.gamma`, `${U}gamma_1`, [d]);
      same(`${B}gamma2.gamma`, `${U}gamma_2`, [d]);
    }
    const moe = c.moe && c.moe.blocks.includes(i) ? c.moe : null;
    for (const [side, m] of [['vision', 'imag'], ['text', 'text']] as const) {
      ln(`${B}ffn.${side}.norm`, `${U}norm2_${m}`);
      if (moe) {
        // fine-grained experts are numExperts·m experts of hidden h/m in DeepSpeed's layout too
        const lay = expertLayout(moe, h);
        if (lay.ffnHiddenSize !== h && moe.useResidual) throw new Error('unilm VLMo / DeepSpeed-MoE layout: fine-grained experts (expertSizeRatio > 1) beside a residual MLP (useResidual) have no mapping');
        rules.push(...deepspeedMoeRules({ ours: `${B}ffn.${side}.inner.moe.`, theirs: `${U}mlp_${m}`, numExperts: lay.numExperts, hiddenSize: d, ffnHiddenSize: lay.ffnHiddenSize, useResidual: moe.useResidual }));
      } else {
        linear(`${B}ffn.${side}.inner.ffn.fc1`, `${U}mlp_${m}.fc1`, h, d);
        linear(`${B}ffn.${side}.inner.ffn.fc2`, `${U}mlp_${m}.fc2`, d, h);
      }
    }
    if (i >= c.depth - c.vlBlocks) {
      ln(`${B}vl.norm`, `${U}norm2_vl`);
      linear(`${B}vl.inner.ffn.fc1`, `${U}mlp_vl.fc1`, h, d);
      linear(`${B}vl.inner.ffn.fc2`, `${U}mlp_vl.fc2`, d, h);
    }
  }
  ln(`${P}norm`, 'transformer.norm');
  // heads
  if (heads.pooler) linear('pooler.dense', 'pooler.dense', d, d);
  if (heads.itc) {
    same('itc.imageProj.weight', 'itc_image_proj.fc.weight', [d, d]);
    same('itc.textProj.weight', 'itc_text_proj.fc.weight', [d, d]);
    same('itc.logitScale', 'logit_scale', []);
  }
  if (heads.itm) linear('itm.fc', 'itm_score.fc', 2, d);
  if (heads.mlm) {
    linear('mlm.transform', 'mlm_score.transform.dense', d, d);
    ln('mlm.norm', 'mlm_score.transform.LayerNorm');
    same('mlm.decoder.weight', 'mlm_score.decoder.weight', [c.vocabSize, d]);
    same('mlm.decoder.bias', 'mlm_score.bias', [c.vocabSize], "VLMo's MLMHead keeps the decoder bias as a separate parameter");
  }
  const classifier = (theirs: string, inDim: number, out: number) => {
    linear('head.mlp.fc1', `${theirs}.0`, 2 * d, inDim);
    ln('head.mlp.norm', `${theirs}.1`, 2 * d);
    linear('head.mlp.fc2', `${theirs}.3`, out, 2 * d);
  };
  if (heads.vqa !== null) classifier('vqa_classifier', d, heads.vqa);
  if (heads.nlvr) classifier('nlvr2_classifier', 2 * d, 2);
  return rules;
}

function has(sd: Record<string, unknown>, prefix: string): boolean {
  return Object.keys(sd).some((k) => k.startsWith(prefix));
}

/**
 * Our state dict from a unilm VLMo / VL-MoE state dict (keys as `VLMo.state_dict()` names
 * them; a DeepSpeed 'module.' prefix is not stripped here). Every tensor is cast to the
 * config's dtype. Heads are taken when the checkpoint has them (pooler, itc_*_proj +
 * logit_scale, itm_score, mlm_score, vqa_classifier, nlvr2_classifier).
 */
export function importVlmoCheckpoint(stateDict: Record<string, T.Tensor>, config: VLMoConfig, opts: VlmoImportOptions = {}): Record<string, T.Tensor> {
  const c = resolveVLMoConfig(config);
  const vqa = stateDict['vqa_classifier.3.weight'];
  const heads: Heads = {
    pooler: has(stateDict, 'pooler.'), itc: has(stateDict, 'itc_image_proj.') || has(stateDict, 'itc_text_proj.') || 'logit_scale' in stateDict,
    itm: has(stateDict, 'itm_score.'), mlm: has(stateDict, 'mlm_score.'), vqa: vqa instanceof T.Tensor ? vqa.shape[0]! : has(stateDict, 'vqa_classifier.') ? 1 : null,
    nlvr: has(stateDict, 'nlvr2_classifier.'),
  };
  const tt = stateDict['token_type_embeddings.weight'];
  const tokenTypes = tt instanceof T.Tensor && tt.shape[0] === 3 ? 3 : 2;
  const rules = vlmoRules(c, opts.prefix ?? 'backbone.', heads, tokenTypes);
  return convertKeys(stateDict, rules, 'import', { from: 'unilm VLMo', to: 'vlmoe', noCounterpart: THEIRS_ONLY, dtype: c.dtype }, opts);
}

/**
 * unilm VLMo names for our state dict (a VLMoPretrainer's, a task model's, or a bare VLMo's):
 * the model `VLMo(config)` of unilm's code with `use_abs_pos_emb=True`,
 * `need_relative_position_embed=False` (as vlmo_base_plus_patch16) would load it, except
 * for the text embedding's LayerNorm, which ours does not have (see the file comment).
 * Tensors keep their dtype.
 */
export function exportVlmoCheckpoint(stateDict: Record<string, T.Tensor>, config: VLMoConfig, opts: VlmoExportOptions = {}): Record<string, T.Tensor> {
  const c = resolveVLMoConfig(config);
  const prefix = opts.prefix ?? (Object.hasOwn(stateDict, 'textPos') && !Object.hasOwn(stateDict, 'backbone.textPos') ? '' : 'backbone.');
  const fc1 = stateDict['head.mlp.fc1.weight'];
  const nlvr = fc1 instanceof T.Tensor && fc1.shape[1] === 2 * c.dim;
  const fc2 = stateDict['head.mlp.fc2.weight'];
  const heads: Heads = {
    pooler: has(stateDict, 'pooler.'), itc: has(stateDict, 'itc.'), itm: has(stateDict, 'itm.'), mlm: has(stateDict, 'mlm.'),
    vqa: has(stateDict, 'head.') && !nlvr ? (fc2 instanceof T.Tensor ? fc2.shape[0]! : 1) : null, nlvr,
  };
  const rules = vlmoRules(c, prefix, heads, opts.tokenTypes ?? (nlvr ? 3 : 2));
  return convertKeys(stateDict, rules, 'export', { from: 'vlmoe', to: 'unilm VLMo', noCounterpart: OURS_ONLY }, { ignore: opts.ignore });
}

/**
 * Checkpoint interop (src/interop): our state dicts ↔ microsoft/unilm VLMo names ↔ DeepSpeed-MoE
 * files. import(export(ours)) is the identity for a tiny VL-MoE (top-1 and residual MoE), a
 * dense VLMo and every task model, in memory, through .pth files and through a DeepSpeed
 * checkpoint folder; the layouts are the documented ones (stacked experts transposed into
 * per-expert torch Linears); problems are errors naming the keys. Forward equality with a
 * PyTorch twin is in interop_twin.test.ts.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as T from '@vlmoe/tensor';
import {
  NLVRModel, RetrievalModel, VLMo, VLMoPretrainer, VQAModel, exportDeepSpeedMoECheckpoint, exportVlmoCheckpoint, importDeepSpeedMoECheckpoint,
  importVlmoCheckpoint, loadDeepSpeedCheckpoint, mergeDeepSpeedExperts, preset, saveDeepSpeedCheckpoint, vlmoMoELayers, type VLMoConfig,
} from '../src/index.js';

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vlmoe-interop-'));
});
afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

const tinyMoE: VLMoConfig = preset('tiny', { experts: 4 });
const residual: VLMoConfig = preset('tiny', { experts: 2, k: 2, moe: { numExperts: 2, useResidual: true, blocks: [0, 3] } });
const dense: VLMoConfig = preset('tiny', { layerScale: null });

function expectSameDict(got: Record<string, T.Tensor>, want: Record<string, T.Tensor>): void {
  expect(Object.keys(got).sort()).toEqual(Object.keys(want).sort());
  for (const [k, w] of Object.entries(want)) {
    const g = got[k]!;
    expect(g.shape, k).toEqual(w.shape);
    expect(g.dtype, k).toBe(w.dtype);
    expect(Array.from(g.dataSync() as Float32Array), k).toEqual(Array.from(w.dataSync() as Float32Array));
  }
}

function values(t: T.Tensor): number[] {
  return Array.from(t.dataSync() as Float32Array);
}

describe('unilm VLMo names', () => {
  it('export writes the documented names and layouts (tiny VL-MoE pretrainer)', () => {
    const m = new VLMoPretrainer(tinyMoE);
    const sd = m.stateDict();
    const ex = exportVlmoCheckpoint(sd, tinyMoE);
    const keys = Object.keys(ex);
    for (const k of [
      'text_embeddings.word_embeddings.weight', 'text_embeddings.position_embeddings.weight', 'token_type_embeddings.weight', 'transformer.patch_embed.proj.weight',
      'transformer.cls_token', 'transformer.pos_embed', 'transformer.blocks.0.attn.qkv.weight', 'transformer.blocks.0.attn.q_bias', 'transformer.blocks.0.attn.v_bias',
      'transformer.blocks.0.gamma_1', 'transformer.blocks.0.gamma_2', 'transformer.blocks.0.norm2_imag.weight', 'transformer.blocks.0.mlp_imag.fc1.weight',
      'transformer.blocks.0.norm2_text.bias', 'transformer.blocks.0.mlp_text.fc2.bias', 'transformer.blocks.3.norm2_vl.weight', 'transformer.blocks.3.mlp_vl.fc1.weight',
      'transformer.blocks.1.mlp_imag.deepspeed_moe.gate.wg.weight', 'transformer.blocks.1.mlp_text.deepspeed_moe.experts.deepspeed_experts.3.fc2.bias',
      'transformer.norm.weight', 'pooler.dense.weight', 'itc_image_proj.fc.weight', 'itc_text_proj.fc.weight', 'logit_scale', 'itm_score.fc.weight',
      'mlm_score.transform.dense.weight', 'mlm_score.transform.LayerNorm.bias', 'mlm_score.decoder.weight', 'mlm_score.bias',
    ]) expect(keys, k).toContain(k);
    expect(keys.some((k) => k.includes('blocks.0.mlp_imag.deepspeed'))).toBe(false); // block 0 is dense
    expect(keys.some((k) => k.startsWith('transformer.blocks.2.mlp_vl'))).toBe(false); // only the top vlBlocks = 1 block
    // experts: ours stacked in × out, theirs one torch Linear (out × in) per expert
    const w1 = sd['backbone.blocks.1.ffn.vision.inner.moe.experts.w1']!; // [E, d, h]
    const fc1 = ex['transformer.blocks.1.mlp_imag.deepspeed_moe.experts.deepspeed_experts.2.fc1.weight']!; // [h, d]
    expect(w1.shape).toEqual([4, 64, 256]);
    expect(fc1.shape).toEqual([256, 64]);
    expect(values(fc1)).toEqual(values(w1.select(0, 2).t()));
    expect(ex['transformer.pos_embed']!.shape).toEqual([1, 17, 64]);
    expect(ex['token_type_embeddings.weight']!.shape).toEqual([2, 64]);
    expect(values(ex['mlm_score.bias']!)).toEqual(values(sd['mlm.decoder.bias']!));
  });

  it.each([
    ['tiny VL-MoE, top-1', tinyMoE],
    ['tiny VL-MoE, top-2 residual MoE in blocks 0 and 3', residual],
    ['dense VLMo without layer scale', dense],
  ])('import(export(ours)) is the identity: %s', (_name, config) => {
    const sd = new VLMoPretrainer(config).stateDict();
    expectSameDict(importVlmoCheckpoint(exportVlmoCheckpoint(sd, config, { tokenTypes: 3 }), config), sd);
    // with VLMo's 2 token types, our row 2 comes back as a copy of row 1 (VLMo's NLVR2 rule)
    const back = importVlmoCheckpoint(exportVlmoCheckpoint(sd, config), config);
    const tt = back['backbone.typeEmbed.weight']!;
    expect(values(tt.narrow(0, 0, 2))).toEqual(values(sd['backbone.typeEmbed.weight']!.narrow(0, 0, 2)));
    expect(values(tt.select(0, 2))).toEqual(values(tt.select(0, 1)));
  });

  it('task models and a bare VLMo round-trip (VQA, NLVR2 with 3 token types, retrieval, no prefix)', () => {
    const vqa = new VQAModel(tinyMoE, 7).stateDict();
    const ex = exportVlmoCheckpoint(vqa, tinyMoE);
    expect(ex['vqa_classifier.3.weight']!.shape).toEqual([7, 128]);
    expectSameDict(importVlmoCheckpoint(ex, tinyMoE, {}), { ...vqa, 'backbone.typeEmbed.weight': importVlmoCheckpoint(ex, tinyMoE)['backbone.typeEmbed.weight']! });
    const nlvr = new NLVRModel(tinyMoE).stateDict();
    const exN = exportVlmoCheckpoint(nlvr, tinyMoE);
    expect(exN['nlvr2_classifier.0.weight']!.shape).toEqual([128, 128]);
    expect(exN['token_type_embeddings.weight']!.shape).toEqual([3, 64]);
    expectSameDict(importVlmoCheckpoint(exN, tinyMoE), nlvr);
    const ret = new RetrievalModel(tinyMoE).stateDict();
    expectSameDict(importVlmoCheckpoint(exportVlmoCheckpoint(ret, tinyMoE, { tokenTypes: 3 }), tinyMoE), ret);
    const bare = new VLMo(tinyMoE).stateDict();
    expectSameDict(importVlmoCheckpoint(exportVlmoCheckpoint(bare, tinyMoE, { tokenTypes: 3 }), tinyMoE, { prefix: '' }), bare);
  });

  it('through a .pth file (savePth → loadPth), and the imported weights give the same forward', () => {
    const m = new VLMoPretrainer(tinyMoE);
    m.eval();
    const p = path.join(dir, 'unilm.pth');
    T.savePth(p, exportVlmoCheckpoint(m.stateDict(), tinyMoE, { tokenTypes: 3 }));
    const imported = importVlmoCheckpoint(T.loadPth(p), tinyMoE);
    expectSameDict(imported, m.stateDict());
    const m2 = new VLMoPretrainer(tinyMoE, {}, { generator: new T.Generator(99) });
    m2.eval();
    m2.loadStateDict(imported);
    const image = T.uniform([2, 3, 32, 32], -1, 1, { generator: new T.Generator(1) });
    const ids = T.tensor([[1, 5, 7, 9], [1, 3, 2, 0]], { dtype: 'int64' });
    const a = m.backbone.forward({ image, textIds: ids }).hidden, b = m2.backbone.forward({ image, textIds: ids }).hidden;
    expect(values(b)).toEqual(values(a));
  });

  it('a float16 checkpoint imports cast to the model dtype', () => {
    const sd = new VLMoPretrainer(dense).stateDict();
    const half = Object.fromEntries(Object.entries(exportVlmoCheckpoint(sd, dense, { tokenTypes: 3 })).map(([k, t]) => [k, T.cast(t, 'float16')]));
    const back = importVlmoCheckpoint(half, dense);
    expect(back['backbone.textPos']!.dtype).toBe('float32');
    expect(values(back['backbone.textPos']!)).toEqual(values(T.cast(T.cast(sd['backbone.textPos']!, 'float16'), 'float32')));
  });
});

describe('conversion errors name the keys', () => {
  const sd = () => new VLMoPretrainer(tinyMoE).stateDict();
  const theirs = () => exportVlmoCheckpoint(sd(), tinyMoE);

  it('missing, unknown (with did-you-mean) and mis-shaped keys, all at once', () => {
    const t = theirs();
    delete t['transformer.blocks.2.attn.q_bias'];
    t['transformer.blocks.2.attn.qbias'] = T.zeros([64]);
    t['transformer.blocks.1.mlp_text.deepspeed_moe.gate.wg.weight'] = T.zeros([8, 64]);
    let msg = '';
    try {
      importVlmoCheckpoint(t, tinyMoE);
    } catch (e) {
      msg = (e as Error).message;
    }
    expect(msg).toMatch(/^import unilm VLMo → vlmoe: 3 problems:/);
    expect(msg).toContain("missing 'transformer.blocks.2.attn.q_bias' (for our 'backbone.blocks.2.attn.qBias')");
    expect(msg).toContain("unknown key 'transformer.blocks.2.attn.qbias' (did you mean 'transformer.blocks.2.attn.q_bias'?)");
    expect(msg).toContain("'transformer.blocks.1.mlp_text.deepspeed_moe.gate.wg.weight' has shape [8, 64], expected [4, 64]");
  });

  it('keys our model has no counterpart for say why, and are dropped only when ignored', () => {
    const t = theirs();
    t['relative_position_bias_table'] = T.zeros([10, 16]);
    t['text_embeddings.LayerNorm.weight'] = T.ones([64]);
    t['itc_vl_text_proj.fc.weight'] = T.zeros([64, 64]);
    expect(() => importVlmoCheckpoint(t, tinyMoE)).toThrow(/'relative_position_bias_table' has no counterpart in vlmoe: VLMo base\/large use a relative position bias/);
    expect(() => importVlmoCheckpoint(t, tinyMoE)).toThrow(/'text_embeddings\.LayerNorm\.weight' has no counterpart in vlmoe: unilm's text embedding \(HF BertEmbeddings\) applies a LayerNorm/);
    const ok = importVlmoCheckpoint(t, tinyMoE, { ignore: ['relative_position_bias_table', 'text_embeddings.LayerNorm.*', 'itc_vl_*'] });
    expect(Object.keys(ok).length).toBe(Object.keys(sd()).length);
    expect(() => importVlmoCheckpoint(theirs(), tinyMoE, { ignore: ['no_such_key'] })).toThrow(/ignore: 'no_such_key' matches no key of the source/);
  });

  it('a relative-position checkpoint (no transformer.pos_embed) needs fill for our imagePos', () => {
    const t = theirs();
    delete t['transformer.pos_embed'];
    expect(() => importVlmoCheckpoint(t, tinyMoE)).toThrow(/missing 'transformer\.pos_embed' \(for our 'backbone\.imagePos'; unilm's pos_embed exists only with use_abs_pos_emb/);
    const pos = T.full([17, 64], 0.5);
    const ok = importVlmoCheckpoint(t, tinyMoE, { fill: { 'backbone.imagePos': pos } });
    expect(values(ok['backbone.imagePos']!)).toEqual(values(pos));
    expect(() => importVlmoCheckpoint(theirs(), tinyMoE, { fill: { 'backbone.imagePos': pos } })).toThrow(/fill 'backbone\.imagePos': the source already provides it/);
  });

  it('export: an unknown key of ours is named; a config that does not match the weights is a shape error', () => {
    const s = sd();
    s['backbone.blocks.0.extra'] = T.zeros([1]);
    expect(() => exportVlmoCheckpoint(s, tinyMoE)).toThrow(/export vlmoe → unilm VLMo: 1 problem:\n {2}unknown key 'backbone\.blocks\.0\.extra'/);
    expect(() => exportVlmoCheckpoint(sd(), preset('tiny', { experts: 8 }))).toThrow(/'backbone\.blocks\.1\.ffn\.vision\.inner\.moe\.gate\.wg\.weight' has shape \[4, 64\], expected \[8, 64\]/);
    expect(() => exportVlmoCheckpoint(sd(), preset('tiny'))).toThrow(/missing 'backbone\.blocks\.1\.ffn\.vision\.inner\.ffn\.fc1\.weight'/);
  });

  it("export of a model with the aux-loss-free expert bias says VLMo has no place for it, and drops it when ignored", () => {
    const biased: VLMoConfig = { ...tinyMoE, moe: { ...tinyMoE.moe!, enableExpertBias: true } };
    const s = new VLMoPretrainer(biased).stateDict();
    expect(() => exportVlmoCheckpoint(s, biased)).toThrow(/'backbone\.blocks\.1\.ffn\.vision\.inner\.moe\.gate\.expertBias' has no counterpart in unilm VLMo: the router's aux-loss-free expert bias/);
    const out = exportVlmoCheckpoint(s, biased, { ignore: ['*gate.expertBias'] });
    expect(Object.keys(out).length).toBe(Object.keys(exportVlmoCheckpoint(new VLMoPretrainer(tinyMoE).stateDict(), tinyMoE)).length);
  });
});

describe('DeepSpeed-MoE checkpoint layout', () => {
  it('export splits experts into per-expert files as DeepSpeed names them; import(export) is the identity', () => {
    const sd = new VLMoPretrainer(tinyMoE).stateDict();
    const ck = exportDeepSpeedMoECheckpoint(sd, tinyMoE, { tokenTypes: 3 });
    const layers = vlmoMoELayers(tinyMoE);
    expect(layers).toEqual(['transformer.blocks.1.mlp_text', 'transformer.blocks.1.mlp_imag', 'transformer.blocks.3.mlp_text', 'transformer.blocks.3.mlp_imag']);
    expect(Object.keys(ck.experts).length).toBe(4 * 4);
    expect(Object.keys(ck.experts['layer_1_expert_2_mp_rank_00_model_states.pt']!).sort()).toEqual([
      'transformer.blocks.1.mlp_imag.deepspeed_moe.experts.deepspeed_experts.2.fc1.bias', 'transformer.blocks.1.mlp_imag.deepspeed_moe.experts.deepspeed_experts.2.fc1.weight',
      'transformer.blocks.1.mlp_imag.deepspeed_moe.experts.deepspeed_experts.2.fc2.bias', 'transformer.blocks.1.mlp_imag.deepspeed_moe.experts.deepspeed_experts.2.fc2.weight',
    ]);
    expect(Object.keys(ck.module).some((k) => k.includes('deepspeed_experts'))).toBe(false);
    expect(Object.keys(ck.module)).toContain('transformer.blocks.1.mlp_imag.deepspeed_moe.gate.wg.weight');
    expect(ck.extra!.num_experts).toEqual([4, 4, 4, 4]);
    expectSameDict(importDeepSpeedMoECheckpoint(ck, tinyMoE), sd);
  });

  it('through a checkpoint folder on disk (saveDeepSpeedCheckpoint → loadDeepSpeedCheckpoint)', () => {
    const sd = new VLMoPretrainer(residual).stateDict();
    const d = path.join(dir, 'ds');
    saveDeepSpeedCheckpoint(d, exportDeepSpeedMoECheckpoint(sd, residual, { tokenTypes: 3 }), 'global_step7');
    expect(fs.readFileSync(path.join(d, 'latest'), 'utf8')).toBe('global_step7');
    expect(fs.existsSync(path.join(d, 'global_step7', 'layer_3_expert_1_mp_rank_00_model_states.pt'))).toBe(true);
    const ck = loadDeepSpeedCheckpoint(d);
    expect(ck.extra!.dp_world_size).toBe(1);
    // residual MoE: mlp and coefficient stay in the main file (no 'expert' in their names)
    expect(Object.keys(ck.module)).toContain('transformer.blocks.0.mlp_text.coefficient.weight');
    expectSameDict(importDeepSpeedMoECheckpoint(ck, residual), sd);
  });

  it('an expert file with the wrong experts, a misnamed file or a missing expert is an error naming it', () => {
    const ck = exportDeepSpeedMoECheckpoint(new VLMoPretrainer(tinyMoE).stateDict(), tinyMoE);
    const layers = vlmoMoELayers(tinyMoE);
    const swapped = { ...ck, experts: { ...ck.experts, 'layer_0_expert_0_mp_rank_00_model_states.pt': ck.experts['layer_0_expert_1_mp_rank_00_model_states.pt']! } };
    expect(() => mergeDeepSpeedExperts(swapped, layers)).toThrow(/'layer_0_expert_0_mp_rank_00_model_states\.pt' holds 'transformer\.blocks\.1\.mlp_text\.deepspeed_moe\.experts\.deepspeed_experts\.1\.fc1\.weight', which is not expert 0 of MoE layer 0/);
    expect(() => mergeDeepSpeedExperts({ ...ck, experts: { 'expert_0.pt': {} } }, layers)).toThrow(/'expert_0\.pt' is not named like a DeepSpeed expert file/);
    const partial = { ...ck, experts: { ...ck.experts } };
    delete partial.experts['layer_2_expert_3_mp_rank_00_model_states.pt'];
    expect(() => importDeepSpeedMoECheckpoint(partial, tinyMoE)).toThrow(/missing 'transformer\.blocks\.3\.mlp_text\.deepspeed_moe\.experts\.deepspeed_experts\.3\.fc1\.weight'/);
  });
});

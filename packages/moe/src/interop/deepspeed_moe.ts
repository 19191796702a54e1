/**
 * DeepSpeed-MoE checkpoints ↔ our MoE layers.
 *
 * Names. DeepSpeed's `MoE` module (deepspeed/moe/layer.py) holds `deepspeed_moe` (a
 * MOELayer) with `gate.wg` (Linear(d, E, bias=False)) and `experts.deepspeed_experts.<i>`
 * (a deep copy of the user's expert module per expert; here VLMo's Mlp with `fc1`, `fc2`),
 * plus `mlp` and `coefficient` with `use_residual`. Ours (`MoE`, layers/moe_layer.ts) holds
 * `gate.wg`, the experts stacked (`experts.w1` [E, d, h], `b1` [E, h], `w2` [E, h, d],
 * `b2` [E, d]: in × out) and `mlp`, `coefficient`. So, for a layer at `<ours>` / `<theirs>`:
 *
 *   <ours>.gate.wg.weight [E, d]        ↔ <theirs>.deepspeed_moe.gate.wg.weight [E, d]
 *   <ours>.experts.w1[e]ᵀ  [h, d]       ↔ <theirs>.deepspeed_moe.experts.deepspeed_experts.<e>.fc1.weight [h, d]
 *   <ours>.experts.b1[e]   [h]          ↔ ….<e>.fc1.bias [h]
 *   <ours>.experts.w2[e]ᵀ  [d, h]       ↔ ….<e>.fc2.weight [d, h]
 *   <ours>.experts.b2[e]   [d]          ↔ ….<e>.fc2.bias [d]
 *   <ours>.mlp.fc1|fc2.*, coefficient.* ↔ <theirs>.mlp.fc1|fc2.*, coefficient.*   (useResidual)
 *
 * Files. DeepSpeed's engine saves `<dir>/<tag>/mp_rank_00_model_states.pt` (a dict whose
 * `module` is the model's state dict without expert weights: every key of an MoE module
 * with 'expert' in it except `…moe.gate.wg.weight` is taken out) and one file per expert
 * of each MoE layer, `layer_<L>_expert_<e>_mp_rank_00_model_states.pt`, holding that
 * expert's tensors under their full names with the global expert index; L counts the MoE
 * modules in `model.named_modules()` order; `<dir>/latest` names the tag. `mergeDeepSpeedExperts`
 * / `splitDeepSpeedExperts` convert between that layout and one consolidated state dict,
 * `loadDeepSpeedCheckpoint` / `saveDeepSpeedCheckpoint` read and write the folder, and
 * `importDeepSpeedMoECheckpoint` / `exportDeepSpeedMoECheckpoint` go between the folder
 * and our VLMo / VL-MoE state dict (vlmo_deepspeed.ts; the names inside are unilm VLMo's,
 * see unilm_vlmo.ts, which is how a VL-MoE trained with DeepSpeed in the VLMo code base
 * names them).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as T from '@vlmoe/tensor';
import { CheckpointKeyError, type KeyRule } from './key_map.js';

/** What DeepSpeed inserts between an MoE module's path and its experts. */
export const DEEPSPEED_EXPERT_INFIX = '.deepspeed_moe.experts.deepspeed_experts.';

export interface DeepSpeedMoELayerSpec {
  /** Our MoE module's key prefix (ending in '.'), e.g. 'backbone.blocks.1.ffn.vision.inner.moe.'. */
  ours: string;
  /** Their MoE module's path (no trailing '.'), e.g. 'transformer.blocks.1.mlp_imag'. */
  theirs: string;
  numExperts: number;
  hiddenSize: number;
  ffnHiddenSize: number;
  useResidual: boolean;
}

/** The key rules of one MoE layer (see the file comment). */
export function deepspeedMoeRules(s: DeepSpeedMoELayerSpec): KeyRule[] {
  const E = s.numExperts, d = s.hiddenSize, h = s.ffnHiddenSize;
  const ex = (e: number) => `${s.theirs}${DEEPSPEED_EXPERT_INFIX}${e}`;
  const ids = Array.from({ length: E }, (_, e) => e);
  const stackedT = (ours: string, fc: string, inDim: number, outDim: number): KeyRule => ({
    ours: `${s.ours}experts.${ours}`, oursShape: [E, inDim, outDim],
    theirs: ids.map((e) => `${ex(e)}.${fc}.weight`), theirsShapes: ids.map(() => [outDim, inDim]),
    toOurs: (ts) => T.stack(ts.map((t) => t.t()), 0),
    toTheirs: (t) => ids.map((e) => t.select(0, e).t()),
    note: `our experts are stacked in × out, DeepSpeed's are one torch Linear (out × in) per expert`,
  });
  const stacked = (ours: string, fc: string, n: number): KeyRule => ({
    ours: `${s.ours}experts.${ours}`, oursShape: [E, n],
    theirs: ids.map((e) => `${ex(e)}.${fc}.bias`), theirsShapes: ids.map(() => [n]),
    toOurs: (ts) => T.stack(ts, 0),
    toTheirs: (t) => ids.map((e) => t.select(0, e)),
  });
  const same = (ours: string, theirs: string, shape: number[]): KeyRule => ({ ours: `${s.ours}${ours}`, oursShape: shape, theirs: [`${s.theirs}.${theirs}`], theirsShapes: [shape] });
  const rules: KeyRule[] = [
    same('gate.wg.weight', 'deepspeed_moe.gate.wg.weight', [E, d]),
    stackedT('w1', 'fc1', d, h),
    stacked('b1', 'fc1', h),
    stackedT('w2', 'fc2', h, d),
    stacked('b2', 'fc2', d),
  ];
  if (s.useResidual) {
    rules.push(
      same('mlp.fc1.weight', 'mlp.fc1.weight', [h, d]), same('mlp.fc1.bias', 'mlp.fc1.bias', [h]),
      same('mlp.fc2.weight', 'mlp.fc2.weight', [d, h]), same('mlp.fc2.bias', 'mlp.fc2.bias', [d]),
      same('coefficient.weight', 'coefficient.weight', [2, d]), same('coefficient.bias', 'coefficient.bias', [2]),
    );
  }
  return rules;
}

// ---- the per-expert file layout ------------------------------------------------------------------

/** The main file of a DeepSpeed checkpoint (model parallel rank 0). */
export const DEEPSPEED_MODEL_FILE = 'mp_rank_00_model_states.pt';

/** DeepSpeed's name of the file holding expert `expert` of MoE layer `layer`. */
export function deepspeedExpertFile(layer: number, expert: number, mpRank = 0): string {
  return `layer_${layer}_expert_${expert}_mp_rank_${String(mpRank).padStart(2, '0')}_model_states.pt`;
}

const EXPERT_FILE = /^layer_(\d+)_expert_(\d+)_mp_rank_(\d+)_model_states\.pt$/;

/** A DeepSpeed checkpoint in memory: the main file's `module` and the expert files by name. */
export interface DeepSpeedCheckpoint {
  /** `module` of mp_rank_00_model_states.pt: every tensor except the experts'. */
  module: Record<string, T.Tensor>;
  /** layer_<L>_expert_<e>_mp_rank_00_model_states.pt → that file's state dict. */
  experts: Record<string, Record<string, T.Tensor>>;
  /** The main file's other entries (num_experts, global_steps, …) when read from a folder or to write. */
  extra?: Record<string, unknown>;
}

function isExpertKey(key: string, moduleOf: (k: string) => string | undefined): boolean {
  // DeepSpeed moves out of `module` every key of an MoE module containing 'expert', except the gate
  return moduleOf(key) !== undefined && key.includes('expert') && !key.includes('moe.gate.wg.weight');
}

/**
 * One consolidated state dict from DeepSpeed's layout: `module` plus every expert file,
 * checking that each file holds exactly the experts its name says (layer by `moeLayers`,
 * the MoE module paths in DeepSpeed's layer order) and that no key appears twice.
 */
export function mergeDeepSpeedExperts(ckpt: DeepSpeedCheckpoint, moeLayers: readonly string[]): Record<string, T.Tensor> {
  const problems: string[] = [];
  const out: Record<string, T.Tensor> = {};
  const put = (k: string, t: T.Tensor, where: string) => {
    if (Object.hasOwn(out, k)) problems.push(`'${k}' appears twice (again in ${where})`);
    else Object.defineProperty(out, k, { value: t, enumerable: true, writable: true, configurable: true });
  };
  for (const [k, t] of Object.entries(ckpt.module)) put(k, t, DEEPSPEED_MODEL_FILE);
  for (const [file, sd] of Object.entries(ckpt.experts)) {
    const m = EXPERT_FILE.exec(path.basename(file));
    if (!m) {
      problems.push(`'${file}' is not named like a DeepSpeed expert file (layer_<L>_expert_<e>_mp_rank_<r>_model_states.pt)`);
      continue;
    }
    const [layer, expert, mp] = [Number(m[1]), Number(m[2]), Number(m[3])];
    if (mp !== 0) problems.push(`'${file}': model-parallel rank ${mp}; only rank 00 is supported (no tensor parallelism)`);
    const mod = moeLayers[layer];
    if (mod === undefined) {
      problems.push(`'${file}': layer ${layer}, but the model has ${moeLayers.length} MoE layers (${moeLayers.join(', ')})`);
      continue;
    }
    const prefix = `${mod}${DEEPSPEED_EXPERT_INFIX}${expert}.`;
    for (const [k, t] of Object.entries(sd)) {
      if (!k.startsWith(prefix)) problems.push(`'${file}' holds '${k}', which is not expert ${expert} of MoE layer ${layer} ('${mod}')`);
      else put(k, t, file);
    }
  }
  if (problems.length) throw new CheckpointKeyError('merge DeepSpeed expert files', problems);
  return out;
}

/**
 * DeepSpeed's layout of a consolidated state dict: expert tensors (see `isExpertKey`) go to
 * `layer_<L>_expert_<e>_…` by their module's place in `moeLayers`, the rest to `module`.
 */
export function splitDeepSpeedExperts(sd: Record<string, T.Tensor>, moeLayers: readonly string[]): DeepSpeedCheckpoint {
  const moduleOf = (k: string) => moeLayers.find((m) => k.startsWith(`${m}.`));
  const module: Record<string, T.Tensor> = {};
  const experts: Record<string, Record<string, T.Tensor>> = {};
  for (const [k, t] of Object.entries(sd)) {
    const mod = moduleOf(k);
    if (!isExpertKey(k, moduleOf)) {
      Object.defineProperty(module, k, { value: t, enumerable: true, writable: true, configurable: true });
      continue;
    }
    const rest = k.slice(mod!.length);
    const m = /^\.deepspeed_moe\.experts\.deepspeed_experts\.(\d+)\./.exec(rest);
    if (!m) throw new Error(`splitDeepSpeedExperts: '${k}' is an expert key of '${mod}' without an expert index`);
    const file = deepspeedExpertFile(moeLayers.indexOf(mod!), Number(m[1]));
    (experts[file] ??= {})[k] = t;
  }
  return { module, experts };
}

/**
 * Reads a DeepSpeed checkpoint folder: `<dir>/<tag>/mp_rank_00_model_states.pt` (its
 * `module`) and every `layer_*_expert_*_mp_rank_00_model_states.pt` beside it; `tag`
 * defaults to the contents of `<dir>/latest`.
 */
export function loadDeepSpeedCheckpoint(dir: string, tag?: string): DeepSpeedCheckpoint {
  let t = tag;
  if (t === undefined) {
    const latest = path.join(dir, 'latest');
    if (!fs.existsSync(latest)) throw new Error(`loadDeepSpeedCheckpoint: ${dir} has no 'latest' file; pass the tag (the checkpoint's sub-folder)`);
    t = fs.readFileSync(latest, 'utf8').trim();
  }
  const folder = path.join(dir, t);
  const main = path.join(folder, DEEPSPEED_MODEL_FILE);
  if (!fs.existsSync(main)) {
    const zero3 = fs.existsSync(folder) && fs.readdirSync(folder).some((f) => f.startsWith('zero_pp_rank_'));
    throw new Error(`loadDeepSpeedCheckpoint: ${main} does not exist${zero3 ? " (this is a ZeRO-3 checkpoint with partitioned weights: consolidate it first, e.g. with DeepSpeed's zero_to_fp32.py, and import that state dict with importVlmoCheckpoint)" : ''}`);
  }
  const obj = T.loadPthObject(main);
  const extra: Record<string, unknown> = {};
  if (obj instanceof T.PyDict) for (const [k, v] of obj) if (k !== 'module') extra[String(k)] = v;
  const module = T.stateDictFromPth(obj, { key: 'module', source: main });
  const experts: Record<string, Record<string, T.Tensor>> = {};
  for (const f of fs.readdirSync(folder).sort()) {
    if (!EXPERT_FILE.test(f)) continue;
    experts[f] = T.loadPth(path.join(folder, f));
  }
  return { module, experts, extra };
}

/** Writes a DeepSpeed checkpoint folder (`<dir>/<tag>/…` and `<dir>/latest`). */
export function saveDeepSpeedCheckpoint(dir: string, ckpt: DeepSpeedCheckpoint, tag = 'global_step0'): void {
  const folder = path.join(dir, tag);
  fs.mkdirSync(folder, { recursive: true });
  const main = new T.PyDict();
  main.set('module', ckpt.module);
  for (const [k, v] of Object.entries(ckpt.extra ?? {})) if (k !== 'module') main.set(k, v);
  T.savePth(path.join(folder, DEEPSPEED_MODEL_FILE), main);
  for (const [f, sd] of Object.entries(ckpt.experts)) T.savePth(path.join(folder, f), sd);
  fs.writeFileSync(path.join(dir, 'latest'), tag);
}

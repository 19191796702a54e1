/**
 * `vlmoe import` / `vlmoe export`: PyTorch checkpoints of microsoft/unilm's VLMo (a `.pth`
 * state dict) and DeepSpeed-MoE checkpoint folders (`mp_rank_00_model_states.pt` + one file per
 * expert) ↔ a vlmoe run folder (`config.json` + `checkpoints/`, safetensors in the global
 * layout). An imported run is a pretraining run to every command: `vlmoe finetune` starts from
 * it (`"init"`), `vlmoe eval --run` evaluates it zero-shot. The key mapping and what has no
 * counterpart: @vlmoe/moe's README ("Checkpoint interop"). `.pth` files are read without
 * Python and without unpickling anything but tensors and plain containers.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as T from '@vlmoe/tensor';
import { BertTokenizer } from '@vlmoe/data';
import {
  exportDeepSpeedMoECheckpoint,
  exportVlmoCheckpoint,
  importDeepSpeedMoECheckpoint,
  importVlmoCheckpoint,
  loadDeepSpeedCheckpoint,
  parameterCount,
  saveDeepSpeedCheckpoint,
  type VLMoConfig,
} from '@vlmoe/moe';
import { loadCheckpointWeights, saveCheckpointWeights } from '@vlmoe/parallel';
import { UsageError } from './command_line.js';
import { readRunRecord } from './recipes/evaluate.js';
import { modelConfig } from './recipes/trainer.js';
import { MODEL_DEFAULTS, type ModelKeys } from './recipes/schemas.js';

export const FORMATS = ['vlmo', 'deepspeed'] as const;
export type CheckpointFormat = (typeof FORMATS)[number];

export const IMPORT_USAGE = `usage: vlmoe import --format vlmo|deepspeed --from SRC --out RUN_DIR [model options]

Converts a PyTorch checkpoint into a vlmoe run folder that 'vlmoe finetune' starts from
("init": RUN_DIR) and 'vlmoe eval --run RUN_DIR' evaluates.

  --format vlmo       SRC is a .pth state dict with microsoft/unilm VLMo names
                      (torch.save(model.state_dict()); a DeepSpeed 'module' entry is taken from inside)
  --format deepspeed  SRC is a DeepSpeed checkpoint folder (latest, <tag>/mp_rank_00_model_states.pt,
                      layer_<L>_expert_<E>_mp_rank_00_model_states.pt) of the unilm-named VL-MoE
  --preset P --experts E --k K --image-size N --vocab-size N
                      the model (as a recipe's keys; --experts 0 = dense VLMo) [tiny, 4, 1, 32, from --tokenizer]
  --tokenizer FILE    the tokenizer.json the model's vocabulary comes from (or give --vocab-size)
  --ignore K1,K2      checkpoint keys with no counterpart to leave out knowingly (e.g. text_embeddings.LayerNorm.*)`;

export const EXPORT_USAGE = `usage: vlmoe export --run RUN_DIR --format vlmo|deepspeed --out DEST

Writes a run's newest weights for PyTorch: --format vlmo → DEST.pth with microsoft/unilm VLMo
names (torch.load reads it); --format deepspeed → a DeepSpeed checkpoint folder DEST
(mp_rank_00_model_states.pt + one file per expert, DeepSpeed-MoE names).`;

export interface ImportOptions extends Partial<ModelKeys> {
  format: CheckpointFormat;
  from: string;
  out: string;
  vocabSize?: number;
  tokenizer?: string;
  ignore?: string[];
}

function vocabFrom(o: ImportOptions): number {
  if (o.vocabSize !== undefined) return o.vocabSize;
  // the vocabulary size the recipes build their models with
  if (o.tokenizer) return BertTokenizer.fromFile(o.tokenizer).vocabSize;
  throw new UsageError('give --vocab-size N or --tokenizer tokenizer.json (the vocabulary the checkpoint was trained with)', IMPORT_USAGE, 'import');
}

/** Imports a checkpoint into a new run folder; returns the folder and the model's parameter count. */
export function importCheckpoint(o: ImportOptions): { runDir: string; tensors: number; parameters: number } {
  const keys: ModelKeys = { ...MODEL_DEFAULTS, experts: o.experts ?? 4, ...Object.fromEntries(Object.entries(o).filter(([k, v]) => k in MODEL_DEFAULTS && v !== undefined)) };
  const mc: VLMoConfig = modelConfig(keys, vocabFrom(o), `vlmoe import (${o.from})`);
  if (fs.existsSync(path.join(o.out, 'config.json'))) throw new Error(`vlmoe import: ${o.out} already holds a run (config.json); choose another --out`);
  const opts = { ignore: o.ignore };
  let weights: Record<string, T.Tensor>;
  if (o.format === 'vlmo') {
    if (!fs.existsSync(o.from) || !fs.statSync(o.from).isFile()) throw new Error(`vlmoe import: ${o.from} is not a file (--format vlmo reads a .pth state dict)`);
    const obj = T.loadPthObject(o.from);
    const sd = T.stateDictFromPth(obj, { key: obj instanceof T.PyDict && obj.has('module') ? 'module' : undefined, source: o.from });
    weights = importVlmoCheckpoint(sd, mc, opts);
  } else {
    if (!fs.existsSync(o.from) || !fs.statSync(o.from).isDirectory()) throw new Error(`vlmoe import: ${o.from} is not a folder (--format deepspeed reads a DeepSpeed checkpoint folder)`);
    weights = importDeepSpeedMoECheckpoint(loadDeepSpeedCheckpoint(o.from), mc, opts);
  }
  saveCheckpointWeights(path.join(o.out, 'checkpoints'), 'imported', weights);
  const record = {
    recipe: 'pretrain', name: path.basename(path.resolve(o.out)), imported: { format: o.format, from: path.resolve(o.from) },
    ...keys, modelConfig: mc, textLen: mc.maxTextLen, data: null, world: 1,
  };
  T.writeFileAtomicSync(path.join(o.out, 'config.json'), (write) => write(new TextEncoder().encode(JSON.stringify(record, null, 2) + '\n')));
  const n = Object.keys(weights).length;
  for (const t of Object.values(weights)) t.dispose();
  return { runDir: o.out, tensors: n, parameters: parameterCount(mc).total };
}

/** Exports a run's newest weights; returns what was written. */
export function exportCheckpoint(o: { run: string; format: CheckpointFormat; out: string }): { out: string; tensors: number } {
  const rec = readRunRecord(o.run);
  const ck = loadCheckpointWeights(path.join(o.run, 'checkpoints'));
  try {
    if (o.format === 'vlmo') {
      const sd = exportVlmoCheckpoint(ck.weights, rec.modelConfig);
      T.savePth(o.out, sd);
      return { out: o.out, tensors: Object.keys(sd).length };
    }
    const ds = exportDeepSpeedMoECheckpoint(ck.weights, rec.modelConfig);
    saveDeepSpeedCheckpoint(o.out, ds, `global_step${ck.globalSteps}`);
    return { out: o.out, tensors: Object.keys(ds.module).length + Object.values(ds.experts).reduce((n, f) => n + Object.keys(f).length, 0) };
  } finally {
    for (const t of Object.values(ck.weights)) t.dispose();
  }
}

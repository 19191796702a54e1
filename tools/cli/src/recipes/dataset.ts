/**
 * The dataset folder a recipe reads. `"shapes"`, `"shapes:<folder>"` or the default path
 * `data/shapes` is the embedded shapes world, generated on first use (and regenerated when
 * its manifest says it is stale); any other path is a prepared dataset that must exist
 * (`vlmoe data convert …` output) and hold `tokenizer.json` and the `<kind>_<split>.arrow`
 * files a recipe asks for (`captions`, `vqa` with `answers.json`, `nlvr2`), so one recipe
 * runs on the synthetic world or on real data.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ensureDefaultDataset } from '@vlmoe/data';
import type { TaskName } from '@vlmoe/moe';

export type Kind = 'captions' | 'vqa' | 'nlvr2';

/** The dataset kind each task trains and evaluates on. */
export const TASK_DATA: Record<TaskName, Kind> = { vqa: 'vqa', nlvr: 'nlvr2', retrieval: 'captions' };
export type Split = 'train' | 'val' | 'test';

export interface RecipeDataset {
  dir: string;
  tokenizer: string;
  /** The Arrow file of a kind and split (checked to exist). */
  file(kind: Kind, split: Split): string;
  /**
   * The file a task is evaluated on: for retrieval `retrieval_<split>.arrow` when the dataset has
   * one (the shapes world: one identifying caption per image, none shared), else the task's kind.
   */
  evalFile(task: TaskName, split: Split): string;
  answers: string;
}

/** The documented default folder of the embedded shapes world (relative to the working directory). */
export const SHAPES_DEFAULT_DIR = 'data/shapes';

/**
 * What a recipe's `data` names: `"shapes"` (the shapes world in `data/shapes`), `"shapes:DIR"`
 * (the shapes world in DIR), the default path `data/shapes` itself, or a prepared dataset folder.
 */
export function resolveDataSpec(data: string): { dir: string; shapes: boolean } {
  if (data === 'shapes') return { dir: SHAPES_DEFAULT_DIR, shapes: true };
  if (data.startsWith('shapes:')) {
    const dir = data.slice('shapes:'.length);
    if (!dir) throw new Error(`data 'shapes:' names no folder (write "shapes" for ${SHAPES_DEFAULT_DIR}, or "shapes:<folder>")`);
    return { dir, shapes: true };
  }
  return { dir: data, shapes: path.normalize(data) === path.normalize(SHAPES_DEFAULT_DIR) };
}

/** The same `data` with its folder made absolute (for recipes written for child processes). */
export function absoluteDataSpec(data: string): string {
  const { dir, shapes } = resolveDataSpec(data);
  return shapes ? `shapes:${path.resolve(dir)}` : path.resolve(dir);
}

export async function openDataset(data: string): Promise<RecipeDataset> {
  const { dir, shapes } = resolveDataSpec(data);
  if (shapes) await ensureDefaultDataset(dir);
  else if (!fs.existsSync(dir)) {
    throw new Error(
      `data '${dir}' does not exist (a prepared dataset folder is made by 'vlmoe data convert'; ` +
        `"shapes" generates the synthetic shapes world in ${SHAPES_DEFAULT_DIR}, "shapes:<folder>" in another folder)`,
    );
  } else if (!fs.statSync(dir).isDirectory()) throw new Error(`data '${dir}' is not a folder (a dataset is a folder of Arrow files with tokenizer.json)`);
  const tokenizer = path.join(dir, 'tokenizer.json');
  if (!fs.existsSync(tokenizer)) throw new Error(`dataset ${dir}: no tokenizer.json (build one with 'vlmoe data tokenizer')`);
  const file = (kind: Kind, split: Split): string => {
    const f = path.join(dir, `${kind}_${split}.arrow`);
    if (!fs.existsSync(f)) throw new Error(`dataset ${dir}: no ${kind}_${split}.arrow (the ${kind} ${split} split this recipe needs)`);
    return f;
  };
  const evalFile = (task: TaskName, split: Split): string => {
    const r = path.join(dir, `retrieval_${split}.arrow`);
    return task === 'retrieval' && fs.existsSync(r) ? r : file(TASK_DATA[task], split);
  };
  return { dir, tokenizer, answers: path.join(dir, 'answers.json'), file, evalFile };
}

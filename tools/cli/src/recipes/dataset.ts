/**
 * The dataset folder a recipe reads. A folder the shapes world lives in (or that does not
 * exist yet) is the embedded default dataset, generated on first use; any other folder is a
 * prepared dataset (`vlmoe data convert …` output) and must hold `tokenizer.json` and the
 * `<kind>_<split>.arrow` files a recipe asks for (`captions`, `vqa` with `answers.json`,
 * `nlvr2`), so one recipe runs on the synthetic world or on real data.
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
  answers: string;
}

export async function openDataset(dir: string): Promise<RecipeDataset> {
  const shapes = !fs.existsSync(dir) || fs.existsSync(path.join(dir, 'manifest.json')) || fs.readdirSync(dir).length === 0;
  if (shapes) await ensureDefaultDataset(dir);
  const tokenizer = path.join(dir, 'tokenizer.json');
  if (!fs.existsSync(tokenizer)) throw new Error(`dataset ${dir}: no tokenizer.json (build one with 'vlmoe data tokenizer')`);
  return {
    dir, tokenizer, answers: path.join(dir, 'answers.json'),
    file(kind, split) {
      const f = path.join(dir, `${kind}_${split}.arrow`);
      if (!fs.existsSync(f)) throw new Error(`dataset ${dir}: no ${kind}_${split}.arrow (the ${kind} ${split} split this recipe needs)`);
      return f;
    },
  };
}

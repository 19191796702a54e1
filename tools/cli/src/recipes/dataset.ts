/**
 * The dataset folder a recipe reads. `"shapes"`, `"shapes:<folder>"` or the default path
 * `data/shapes` is the embedded shapes world, generated on first use (and regenerated when
 * its manifest says it is stale); `"shapes-rich"`, `"shapes-rich:<folder>"` or the path
 * `data/shapes-rich` is its rich variant (12 colours, a 3×3 grid of positions, 1–6 objects,
 * 10,000 training images); any other path is a prepared dataset that must exist
 * (`vlmoe data convert …` output) and hold `tokenizer.json` and the `<kind>_<split>.arrow`
 * files a recipe asks for (`captions`, `vqa` with `answers.json`, `nlvr2`), so one recipe
 * runs on the synthetic world or on real data.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ensureDefaultDataset, readShapesWorldManifest, type ShapesWorldConcepts } from '@vlmoe/data';
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
/** The documented default folder of the rich shapes world. */
export const SHAPES_RICH_DEFAULT_DIR = 'data/shapes-rich';

/** The spec word and default folder of each concept set of the shapes world. */
const SHAPES_SPECS: Record<ShapesWorldConcepts, { word: string; dir: string }> = {
  standard: { word: 'shapes', dir: SHAPES_DEFAULT_DIR },
  rich: { word: 'shapes-rich', dir: SHAPES_RICH_DEFAULT_DIR },
};

/**
 * What a recipe's `data` names: `"shapes"` (the shapes world in `data/shapes`), `"shapes:DIR"`
 * (the shapes world in DIR), `"shapes-rich"` / `"shapes-rich:DIR"` (the rich shapes world in
 * `data/shapes-rich` / DIR), the default paths `data/shapes` and `data/shapes-rich` themselves,
 * or a prepared dataset folder. `concepts` is the shapes world's concept set (null for a
 * prepared dataset).
 */
export function resolveDataSpec(data: string): { dir: string; shapes: boolean; concepts: ShapesWorldConcepts | null } {
  for (const concepts of ['standard', 'rich'] as const) {
    const { word, dir: dflt } = SHAPES_SPECS[concepts];
    if (data === word) return { dir: dflt, shapes: true, concepts };
    if (data.startsWith(`${word}:`)) {
      const dir = data.slice(word.length + 1);
      if (!dir) throw new Error(`data '${word}:' names no folder (write "${word}" for ${dflt}, or "${word}:<folder>")`);
      return { dir, shapes: true, concepts };
    }
  }
  const plain = (p: string) => path.normalize(p).replace(/(.)[\\/]+$/, '$1'); // "data/shapes/" is "data/shapes"
  for (const concepts of ['standard', 'rich'] as const) {
    if (plain(data) === plain(SHAPES_SPECS[concepts].dir)) return { dir: data, shapes: true, concepts };
  }
  return { dir: data, shapes: false, concepts: null };
}

/** The same `data` with its folder made absolute (for recipes written for child processes). */
export function absoluteDataSpec(data: string): string {
  const { dir, concepts } = resolveDataSpec(data);
  return concepts ? `${SHAPES_SPECS[concepts].word}:${path.resolve(dir)}` : path.resolve(dir);
}

/**
 * Generate (or reuse) the shapes world a spec names, under the dataset's lock. A folder that
 * already holds the shapes world of the other concept set is an error naming both (it is not
 * overwritten: another run may be reading it); any other mismatch with its manifest (a stale
 * generator, other sizes, a damaged file) regenerates it.
 */
async function ensureShapes(dir: string, concepts: ShapesWorldConcepts): Promise<void> {
  await ensureDefaultDataset(dir, { ...(concepts === 'rich' ? { concepts } : {}), otherConcepts: 'error' });
}

export async function openDataset(data: string): Promise<RecipeDataset> {
  const { dir, concepts } = resolveDataSpec(data);
  if (concepts) await ensureShapes(dir, concepts);
  else if (!fs.existsSync(dir)) {
    throw new Error(
      `data '${dir}' does not exist (a prepared dataset folder is made by 'vlmoe data convert'; ` +
        `"shapes" generates the synthetic shapes world in ${SHAPES_DEFAULT_DIR}, "shapes:<folder>" in another folder, ` +
        `"shapes-rich" the rich shapes world in ${SHAPES_RICH_DEFAULT_DIR}, "shapes-rich:<folder>" in another folder)`,
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

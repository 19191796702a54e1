/** `vlmoe-data synth`: the synthetic shapes-world dataset (and its tokenizer.json). */
import { ensureDefaultDataset } from '../default_dataset.js';
import { SHAPES_WORLD_CONCEPTS, shapesWorldDefaultSizes, type ShapesWorldPerSplit } from '../synthetic/index.js';
import { choiceOption, intOption, parseCommand, type CliIO } from './command_line.js';

export const SYNTH_USAGE = `usage: vlmoe-data synth <out-dir> [--concepts standard|rich] [--seed N] [--train N] [--val N] [--test N]
                       [--nlvr-train N] [--nlvr-val N] [--nlvr-test N] [--image-size N]

Writes captions_/vqa_/nlvr2_{train,val,test}.arrow, retrieval_{val,test}.arrow, answers.json,
tokenizer.json and manifest.json; skips the work when the folder already holds the same dataset.
  --concepts standard|rich
                    the concept set (default standard: 8 colours, 5 positions, 1-4 objects;
                    rich: 12 colours, a 3x3 grid of positions, 1-6 objects, larger splits)
  --seed N          seed (default 0)
  --train/--val/--test N
                    images per split (default 2000/250/250, rich 10000/500/500;
                    giving one keeps the others' defaults)
  --nlvr-train/--nlvr-val/--nlvr-test N
                    NLVR2 image pairs per split (default 1000/125/125, rich 5000/250/250)
  --image-size N    image side in pixels, 8..1024 (default 64)
`;

const OPTIONS = {
  concepts: { type: 'string' },
  seed: { type: 'string' },
  train: { type: 'string' },
  val: { type: 'string' },
  test: { type: 'string' },
  'nlvr-train': { type: 'string' },
  'nlvr-val': { type: 'string' },
  'nlvr-test': { type: 'string' },
  'image-size': { type: 'string' },
} as const;

export async function synthCommand(argv: string[], io: CliIO): Promise<void> {
  const a = parseCommand(argv, { name: 'synth', usage: SYNTH_USAGE, options: OPTIONS, positionals: { min: 1, max: 1, what: '<out-dir>' } }, io);
  if (!a) return;
  const { values: v, usage: fail } = a;
  const out = a.positionals[0]!;
  const concepts = choiceOption(v.concepts, 'concepts', fail, SHAPES_WORLD_CONCEPTS);
  const defaults = shapesWorldDefaultSizes(concepts);
  const count = (x: string | undefined, flag: string) => intOption(x, flag, fail, 0, 10_000_000);
  const perSplit = (flags: readonly ['train' | 'nlvr-train', 'val' | 'nlvr-val', 'test' | 'nlvr-test'], dflt: Readonly<ShapesWorldPerSplit>): ShapesWorldPerSplit | undefined => {
    const [train, val, test] = flags.map((f) => count(v[f], f));
    return train !== undefined || val !== undefined || test !== undefined ? { train: train ?? dflt.train, val: val ?? dflt.val, test: test ?? dflt.test } : undefined;
  };
  const splits = perSplit(['train', 'val', 'test'], defaults.splits);
  const nlvrPairs = perSplit(['nlvr-train', 'nlvr-val', 'nlvr-test'], defaults.nlvrPairs);
  const seed = intOption(v.seed, 'seed', fail, 0);
  const imageSize = intOption(v['image-size'], 'image-size', fail, 8, 1024);
  const ds = await ensureDefaultDataset(out, { ...(concepts === 'rich' ? { concepts } : {}), seed, imageSize, splits, nlvrPairs });
  const c = ds.manifest.counts;
  io.out(`${out}: ${ds.generated ? 'generated' : 'already up to date'}: ${concepts ?? 'standard'} concepts, ${c.images} images; captions rows ${JSON.stringify(c.captions)}, questions ${JSON.stringify(c.questions)}, NLVR pairs ${JSON.stringify(c.nlvr2)}, retrieval rows ${JSON.stringify({ val: c.retrieval.val, test: c.retrieval.test })}, ${c.answers} answers; tokenizer ${ds.tokenizer}\n`);
}

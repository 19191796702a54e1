/** `vlmoe-data synth`: the synthetic shapes-world dataset (and its tokenizer.json). */
import { ensureDefaultDataset } from '../default_dataset.js';
import { intOption, parseCommand, type CliIO } from './command_line.js';

export const SYNTH_USAGE = `usage: vlmoe-data synth <out-dir> [--seed N] [--train N] [--val N] [--test N] [--image-size N]

Writes captions_/vqa_/nlvr2_{train,val,test}.arrow, answers.json, tokenizer.json and
manifest.json; skips the work when the folder already holds the same dataset.
  --seed N          seed (default 0)
  --train/--val/--test N
                    images per split (default 2000/250/250; giving one keeps the others' defaults)
  --image-size N    image side in pixels, 8..1024 (default 64)
`;

const OPTIONS = {
  seed: { type: 'string' },
  train: { type: 'string' },
  val: { type: 'string' },
  test: { type: 'string' },
  'image-size': { type: 'string' },
} as const;

export async function synthCommand(argv: string[], io: CliIO): Promise<void> {
  const a = parseCommand(argv, { name: 'synth', usage: SYNTH_USAGE, options: OPTIONS, positionals: { min: 1, max: 1, what: '<out-dir>' } }, io);
  if (!a) return;
  const { values: v, usage: fail } = a;
  const out = a.positionals[0]!;
  const count = (x: string | undefined, flag: string) => intOption(x, flag, fail, 0, 10_000_000);
  const [train, val, test] = [count(v.train, 'train'), count(v.val, 'val'), count(v.test, 'test')];
  const splits = train !== undefined || val !== undefined || test !== undefined ? { train: train ?? 2000, val: val ?? 250, test: test ?? 250 } : undefined;
  const seed = intOption(v.seed, 'seed', fail, 0);
  const imageSize = intOption(v['image-size'], 'image-size', fail, 8, 1024);
  const ds = await ensureDefaultDataset(out, { seed, imageSize, splits });
  const c = ds.manifest.counts;
  io.out(`${out}: ${ds.generated ? 'generated' : 'already up to date'}: ${c.images} images; captions rows ${JSON.stringify(c.captions)}, questions ${JSON.stringify(c.questions)}, NLVR pairs ${JSON.stringify(c.nlvr2)}, ${c.answers} answers; tokenizer ${ds.tokenizer}\n`);
}

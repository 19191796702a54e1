/** `vlmoe-data split`: carve a held-out split (a dev set) from a dataset file, whole groups at a time (images, NLVR sets / statements). */
import { groupSplit } from '../arrow/group_split.js';
import { intOption, parseCommand, type CliIO } from './command_line.js';

export const SPLIT_USAGE = `usage: vlmoe-data split <in.arrow> <rest.arrow> <held.arrow> --fraction F [--seed N]

Carves a held-out split from a captions, vqa or nlvr2 file — a dev set from a training set, so
that hyperparameters are chosen on data that is neither trained on nor the test set. Whole
groups go to one side: an image (image_id) for captions and vqa; for nlvr2, rows that share a
statement text or an identifier less its last -part (NLVR2: a set of image pairs, NLVR1: a
statement id) are one group. The
held-out groups are round(F × groups) chosen by a hash of the seed and the group, so the same
input and seed give the same files on every machine. VQA sidecars follow: the
<stem>_annotations.json is split by question id, <stem>_answers.json copied beside both.
  --fraction F   share of the groups held out, in (0, 1) (e.g. 0.1)
  --seed N       which groups (default 0)
`;

export async function splitCommand(argv: string[], io: CliIO): Promise<void> {
  const options = { fraction: { type: 'string' }, seed: { type: 'string' } } as const;
  const a = parseCommand(argv, { name: 'split', usage: SPLIT_USAGE, options, positionals: { min: 3, max: 3, what: '<in.arrow> <rest.arrow> <held.arrow>' } }, io);
  if (!a) return;
  const { values: v, usage: fail } = a;
  if (v.fraction === undefined) fail('needs --fraction F (the share held out, e.g. 0.1)');
  const fraction = Number(v.fraction);
  if (!/^\s*[0-9.eE+-]+\s*$/.test(v.fraction!) || !(fraction > 0 && fraction < 1)) fail(`--fraction must be a number in (0, 1), got '${v.fraction}'`);
  const seed = intOption(v.seed, 'seed', fail, 0) ?? 0;
  const [input, rest, held] = a.positionals as [string, string, string];
  const r = await groupSplit(input, { rest, held }, { fraction, seed });
  io.out(`${input}: ${r.kind}, split by ${r.groupBy}, seed ${seed}\n`);
  io.out(`  ${rest}: ${r.rows.rest} rows (${r.groups.rest} groups)\n`);
  io.out(`  ${held}: ${r.rows.held} rows (${r.groups.held} groups held out)\n`);
  for (const s of r.sidecars) io.out(`  + ${s}\n`);
}

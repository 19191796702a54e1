/**
 * The fenced code blocks of the repository's READMEs and what the docs test does with each.
 *
 * Conventions (written once here; docs/README-conventions in the root README):
 * - ```sh run      every line runs, in order, in a scratch folder (exit status 0 required)
 * - ```sh no-run   shown, not run (long jobs, other machines, data outside the repository)
 * - ```ts / ```js  a complete program: type-checked (ts) and run; ```ts fragment / ```js fragment
 *                  is a piece of a program, shown only
 * - <!-- file: NAME --> on the line before a block writes the block to NAME in the scratch
 *   folder first (a config the next commands use)
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';

export interface Block {
  /** README path relative to the repository root. */
  readme: string;
  /** 1-based line of the opening fence. */
  line: number;
  lang: string;
  /** The words after the language: run, no-run, fragment. */
  flags: string[];
  /** `<!-- file: NAME -->` before the block. */
  file: string | null;
  body: string;
}

const SHELL = ['sh', 'bash', 'shell'];
const CODE = ['ts', 'typescript', 'js', 'javascript', 'mjs'];

/** Every README.md of the repository (root, packages/*, tools/*) and every Markdown file under docs/. */
export function readmes(root: string): string[] {
  const out = ['README.md'];
  for (const dir of ['packages', 'tools']) {
    for (const d of readdirSync(join(root, dir)).sort()) if (existsSync(join(root, dir, d, 'README.md'))) out.push(join(dir, d, 'README.md'));
  }
  if (existsSync(join(root, 'docs'))) for (const f of readdirSync(join(root, 'docs')).sort()) if (f.endsWith('.md')) out.push(join('docs', f));
  return out.filter((f) => existsSync(join(root, f)));
}

export function blocks(root: string, readme: string): Block[] {
  const lines = readFileSync(join(root, readme), 'utf8').split('\n');
  const out: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\S*)\s*(.*)$/.exec(lines[i]!);
    if (!open) continue;
    let j = i + 1;
    while (j < lines.length && !/^```\s*$/.test(lines[j]!)) j++;
    const file = i > 0 ? (/^<!--\s*file:\s*(\S+)\s*-->$/.exec(lines[i - 1]!.trim())?.[1] ?? null) : null;
    out.push({ readme: relative(root, join(root, readme)), line: i + 1, lang: open[1]!.toLowerCase(), flags: open[2]!.split(/\s+/).filter(Boolean), file, body: lines.slice(i + 1, j).join('\n') + '\n' });
    i = j;
  }
  return out;
}

export const isShell = (b: Block) => SHELL.includes(b.lang);
export const isCode = (b: Block) => CODE.includes(b.lang);
export const isTs = (b: Block) => b.lang === 'ts' || b.lang === 'typescript';

/** What is wrong with a block's marking (null when it is fine). */
export function markingProblem(b: Block): string | null {
  if (isShell(b)) {
    const run = b.flags.includes('run'), noRun = b.flags.includes('no-run');
    if (run === noRun) return `a shell block must be marked \`${b.lang} run\` or \`${b.lang} no-run\``;
  }
  if (isCode(b)) {
    const unknown = b.flags.filter((f) => f !== 'fragment');
    if (unknown.length) return `unknown flag(s) ${unknown.join(' ')} (a code block is a program, or \`${b.lang} fragment\`)`;
    if (!isTs(b) && /(:\s*(string|number|boolean)\b|\)\s+as\s+[A-Z]\w*|\w!\.|^\s*interface\s)/m.test(b.body)) return 'TypeScript syntax in a JavaScript block (use ```ts)';
  }
  return null;
}

/** The commands of a shell block: one per line, `\`-continued lines joined, blank lines and comments dropped. */
export function commands(b: Block): string[] {
  const out: string[] = [];
  let cur = '';
  for (const raw of b.body.split('\n')) {
    const line = raw.replace(/\s+$/, '');
    if (line.endsWith('\\')) {
      cur += line.slice(0, -1) + ' ';
      continue;
    }
    cur += line;
    if (cur.trim() && !cur.trim().startsWith('#')) out.push(cur.trim());
    cur = '';
  }
  return out;
}

/** `vlmoe-data inspect`: format, kind, schema, row and batch counts and the first rows of Arrow files. */
import { ArrowReader } from '../arrow/reader.js';
import { describeType } from '../arrow/schemas.js';
import { parseCommand, type CliIO } from './command_line.js';

export const INSPECT_USAGE = `usage: vlmoe-data inspect <file.arrow>...

Prints each file's IPC format (file or stream), dataset kind, rows, record batches, schema and
its first two rows. A file that cannot be read is reported with its name and the others are
still inspected; the exit status is then 1.
`;

function summarise(v: unknown): string {
  if (v instanceof Uint8Array) return `<${v.byteLength} bytes>`;
  if (Array.isArray(v)) return `[${v.slice(0, 3).map(summarise).join(', ')}${v.length > 3 ? `, … ${v.length} in all` : ''}]`;
  if (typeof v === 'string') return JSON.stringify(v.length > 60 ? v.slice(0, 57) + '...' : v);
  if (v !== null && typeof v === 'object') return `{${Object.entries(v).map(([k, x]) => `${k}: ${summarise(x)}`).join(', ')}}`;
  return String(v);
}

async function inspectFile(f: string, io: CliIO): Promise<void> {
  const r = await ArrowReader.open(f);
  try {
    const first: string[] = [];
    for await (const b of r.batches()) {
      for (let i = 0; i < b.numRows && first.length < 2; i++) {
        first.push(Object.entries(b.row(i) as object).map(([k, v]) => `    ${k}: ${summarise(v)}`).join('\n'));
      }
      if (r.format === 'file') break; // counts come from the footer; a stream is read to its end to count
    }
    io.out(`${f}\n  format: IPC ${r.format}, kind: ${r.kind ?? 'unknown'}, rows: ${r.numRows}, record batches: ${r.numBatches}\n`);
    io.out(`  schema: ${r.schema.fields.map((x) => `${x.name}: ${describeType(x.type)}`).join(', ')}\n`);
    first.forEach((s, i) => io.out(`  row ${i}:\n${s}\n`));
  } finally {
    await r.close();
  }
}

/** Returns the number of files that could not be read. */
export async function inspectCommand(argv: string[], io: CliIO): Promise<number> {
  const a = parseCommand(argv, { name: 'inspect', usage: INSPECT_USAGE, options: {}, positionals: { min: 1, max: Infinity, what: 'at least one Arrow file' } }, io);
  if (!a) return 0;
  let failed = 0;
  for (const f of a.positionals) {
    try {
      await inspectFile(f, io);
    } catch (e) {
      failed++;
      const msg = (e as Error).message;
      io.err(`vlmoe-data inspect: ${msg.startsWith(f) ? msg : `${f}: ${msg}`}\n`);
    }
  }
  return failed;
}

/** JSON files read with errors naming the file and what it should have been. */
import * as fs from 'node:fs';

/**
 * Reads and parses a JSON file; errors name the file and `what` it should be:
 * "<path> does not exist (expected a <what>)", "<path>: cannot read the <what> (<code>): …",
 * "<path>: <what> is not valid JSON: …".
 */
export function readJsonFile(path: string, what = 'JSON file'): unknown {
  let text: string;
  try {
    text = fs.readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new Error(code === 'ENOENT' ? `${path} does not exist (expected a ${what})` : `${path}: cannot read the ${what}${code ? ` (${code})` : ''}: ${(e as Error).message}`, { cause: e });
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new Error(`${path}: ${what} is not valid JSON: ${(e as Error).message}`, { cause: e });
  }
}

/**
 * The file helpers of @vlmoe/data (and of @vlmoe/eval, which imports them): JSON files read
 * with errors naming the file, and atomic writes (temp file + fsync + rename + directory
 * fsync), so nothing half-written is ever left behind. @vlmoe/data stands alone (no tensor
 * import), so the packages above @vlmoe/tensor use its twins (serialization/atomic.ts and
 * json_config.ts there) with the same semantics.
 */
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, writeSync, mkdirSync } from 'node:fs';
import { dirname, basename, join } from 'node:path';

let tmpCounter = 0;

/** A temporary path next to `path` (same file system, so rename is atomic). */
export function tempPathFor(path: string): string {
  return join(dirname(path), `.${basename(path)}.tmp-${process.pid}-${Date.now()}-${tmpCounter++}`);
}

export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = tempPathFor(path);
  const fd = openSync(tmp, 'w');
  try {
    const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    let off = 0;
    while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
    fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw e;
  }
  closeSync(fd);
  renameSync(tmp, path);
  // the rename itself made durable (where the file system can fsync a directory)
  try {
    const dfd = openSync(dirname(path), 'r');
    try {
      fsyncSync(dfd);
    } finally {
      closeSync(dfd);
    }
  } catch {
    /* a platform that cannot fsync a directory: the rename is still atomic */
  }
}

/** Reads and parses a JSON file; errors name the file and `what` it should be. */
export function readJsonFile(path: string, what = 'JSON file'): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new Error(`${path}: cannot read ${what}${code ? ` (${code})` : ''}: ${(e as Error).message}`, { cause: e });
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new Error(`${path}: ${what} is not valid JSON: ${(e as Error).message}`, { cause: e });
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function lockHolderAlive(lock: string): boolean {
  let pid = NaN;
  try {
    pid = Number(readFileSync(lock, 'utf8').trim().split(/\s+/)[0]);
  } catch {
    return true; // being written or just released: look again
  }
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Runs `fn` while holding an exclusive lock on `path` between processes of this machine
 * (`<path>.lock`, created with O_EXCL and holding the owner's pid). A lock whose owner has
 * died is taken over. Used where several processes (ranks, parallel test files, two
 * commands) may generate the same files at once.
 */
export async function withFileLock<T>(path: string, fn: () => Promise<T>, onWait?: () => void): Promise<T> {
  const lock = `${path}.lock`;
  mkdirSync(dirname(lock), { recursive: true });
  let waited = false;
  for (;;) {
    try {
      const fd = openSync(lock, 'wx');
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      if (!lockHolderAlive(lock)) {
        rmSync(lock, { force: true });
        continue;
      }
      if (!waited) onWait?.();
      waited = true;
      await sleep(100);
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(lock, { force: true });
  }
}

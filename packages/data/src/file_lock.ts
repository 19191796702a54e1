/**
 * A lock between the processes of one machine, for files that several processes (ranks,
 * parallel test files, two commands) may generate at once. (Atomic writes and JSON reads are
 * @vlmoe/util's.)
 */
import { closeSync, openSync, readFileSync, rmSync, writeSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';

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

/**
 * Atomic file replacement, the one implementation of the repository: write to a temporary
 * file in the target's directory, fsync it, rename it over the target, fsync the directory.
 * A crash or an error at any point leaves either the old file or the new one, never a torn
 * mix, and an error removes the temporary file. (POSIX rename within one directory is
 * atomic; the directory fsync makes the rename itself durable.) The target's permission bits
 * are kept when it exists.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';

/** Receives the file's bytes chunk by chunk, in order. */
export type ChunkWriter = (chunk: Uint8Array) => void;
export type AsyncChunkWriter = (chunk: Uint8Array) => Promise<void>;

/** What `writeFileAtomicSync` writes: the whole content, or a producer that hands it over in chunks. */
export type FileContent = string | Uint8Array | ((write: ChunkWriter) => void);

/** A fresh, unguessable temporary name beside `target` (same directory, so rename is atomic). */
export function tempPathFor(target: string): string {
  return path.join(path.dirname(target), `.${path.basename(target)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
}

/** The target's permission bits when it exists (kept across the replacement). */
function existingMode(target: string): number | undefined {
  try {
    return fs.statSync(target).mode & 0o7777;
  } catch {
    return undefined;
  }
}

/** Errors that mean "this platform/filesystem cannot fsync a directory" (not a failed save). */
function ignorableDirSyncError(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException).code;
  return code === 'EISDIR' || code === 'EINVAL' || code === 'EPERM' || code === 'EACCES' || code === 'ENOTSUP' || code === 'EBADF';
}

function fsyncDirSync(dir: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch (e) {
    if (!ignorableDirSyncError(e)) throw e;
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

async function fsyncDir(dir: string): Promise<void> {
  let fh: fsp.FileHandle | undefined;
  try {
    fh = await fsp.open(dir, 'r');
    await fh.sync();
  } catch (e) {
    if (!ignorableDirSyncError(e)) throw e;
  } finally {
    await fh?.close();
  }
}

/**
 * Replaces `target` atomically with `content`: a string (UTF-8), bytes, or a producer that
 * hands the bytes to its writer chunk by chunk (a large file never held whole). If the
 * producer (or any write, fsync or the rename) throws, the temporary file is removed,
 * `target` is untouched, and the error is rethrown. With `mkdir`, missing parent directories
 * are created first.
 */
export function writeFileAtomicSync(target: string, content: FileContent, options: { mkdir?: boolean } = {}): void {
  if (options.mkdir) fs.mkdirSync(path.dirname(target), { recursive: true });
  const produce: (write: ChunkWriter) => void =
    typeof content === 'function' ? content : (write) => write(typeof content === 'string' ? Buffer.from(content, 'utf8') : content);
  const tmp = tempPathFor(target);
  const mode = existingMode(target);
  let fd: number | undefined = fs.openSync(tmp, 'wx', mode ?? 0o666);
  try {
    if (mode !== undefined) fs.fchmodSync(fd, mode);
    const f = fd;
    produce((chunk) => {
      let done = 0;
      while (done < chunk.byteLength) done += fs.writeSync(f, chunk, done, chunk.byteLength - done);
    });
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = undefined;
    fs.renameSync(tmp, target);
  } catch (e) {
    if (fd !== undefined) {
      try {
        fs.closeSync(fd);
      } catch {
        /* already failing; keep the first error */
      }
    }
    try {
      fs.unlinkSync(tmp);
    } catch {
      /* not there (rename happened) or not removable; keep the first error */
    }
    throw e;
  }
  fsyncDirSync(path.dirname(target));
}

/** Async twin of `writeFileAtomicSync` for a producer that awaits its writes. */
export async function writeFileAtomic(target: string, produce: (write: AsyncChunkWriter) => Promise<void>, options: { mkdir?: boolean } = {}): Promise<void> {
  if (options.mkdir) await fsp.mkdir(path.dirname(target), { recursive: true });
  const tmp = tempPathFor(target);
  const mode = existingMode(target);
  let fh: fsp.FileHandle | undefined = await fsp.open(tmp, 'wx', mode ?? 0o666);
  try {
    if (mode !== undefined) await fh.chmod(mode);
    const h = fh;
    await produce(async (chunk) => {
      let done = 0;
      while (done < chunk.byteLength) done += (await h.write(chunk, done, chunk.byteLength - done)).bytesWritten;
    });
    await fh.sync();
    await fh.close();
    fh = undefined;
    await fsp.rename(tmp, target);
  } catch (e) {
    await fh?.close().catch(() => undefined);
    await fsp.unlink(tmp).catch(() => undefined);
    throw e;
  }
  await fsyncDir(path.dirname(target));
}

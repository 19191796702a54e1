/**
 * A minimal ZIP reader and writer for the archives `torch.save` writes (PKWARE APPNOTE 6.3).
 *
 * Reading: the end-of-central-directory record (ZIP64 too), the central directory, and one
 * entry at a time through a random-access `ByteSource` (a file descriptor or bytes), so a
 * multi-gigabyte checkpoint is never read whole. Entries may be stored (method 0, what
 * PyTorch writes) or deflated (method 8, inflated with node:zlib); every entry's size and
 * CRC-32 are checked. Encrypted entries, other methods and multi-disk archives are refused.
 *
 * Writing: stored entries only, each entry's data aligned to `align` bytes (64, like
 * PyTorch's writer) by padding the local header's extra field, CRC-32 in the headers (no
 * data descriptors), and ZIP64 records when an offset or a size does not fit 32 bits.
 */
import * as fs from 'node:fs';
import * as zlib from 'node:zlib';
import { crc32 } from '@vlmoe/util';

/** An invalid or unsupported archive, naming the file (and the entry). */
export class ZipError extends Error {
  override name = 'ZipError';
  constructor(readonly source: string, detail: string) {
    super(`zip ${source}: ${detail}`);
  }
}

/** Random-access bytes: a file or a buffer. */
export interface ByteSource {
  readonly length: number;
  /** Exactly `length` bytes from `position` (throws past the end). */
  read(position: number, length: number): Uint8Array;
}

export function bytesSource(bytes: Uint8Array): ByteSource {
  return {
    length: bytes.length,
    read(position, length) {
      if (position < 0 || position + length > bytes.length) throw new RangeError(`read of ${length} bytes at ${position} is past the end (${bytes.length} bytes)`);
      return bytes.subarray(position, position + length);
    },
  };
}

/** Reads from an open file descriptor (the caller closes it). */
export function fileSource(fd: number): ByteSource {
  const length = fs.fstatSync(fd).size;
  return {
    length,
    read(position, n) {
      if (position < 0 || position + n > length) throw new RangeError(`read of ${n} bytes at ${position} is past the end (${length} bytes)`);
      const buf = new Uint8Array(n);
      let done = 0;
      while (done < n) {
        const k = fs.readSync(fd, buf, done, Math.min(n - done, 1 << 30), position + done);
        if (k === 0) throw new RangeError(`unexpected end of file at byte ${position + done}`);
        done += k;
      }
      return buf;
    },
  };
}

// ---- reading ----------------------------------------------------------------------------------

export interface ZipEntry {
  name: string;
  /** 0 stored, 8 deflate. */
  method: number;
  flags: number;
  crc32: number;
  compressedSize: number;
  size: number;
  localHeaderOffset: number;
}

const SIG_LOCAL = 0x04034b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_EOCD = 0x06054b50;
const SIG_ZIP64_EOCD = 0x06064b50;
const SIG_ZIP64_LOCATOR = 0x07064b50;
const U32_MAX = 0xffffffff;
const U16_MAX = 0xffff;

function view(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

function u64(dv: DataView, at: number, source: string, what: string): number {
  const v = dv.getBigUint64(at, true);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new ZipError(source, `${what} ${v} is too large`);
  return Number(v);
}

/** True when the bytes start like a zip archive (a local file header). */
export function looksLikeZip(first: Uint8Array): boolean {
  return first.length >= 4 && view(first).getUint32(0, true) === SIG_LOCAL;
}

/** The archive's entries, from its central directory (validated against the archive's size). */
export function readZipDirectory(src: ByteSource, source: string): ZipEntry[] {
  const len = src.length;
  if (len < 22) throw new ZipError(source, `${len} bytes is too short for a zip archive (no end-of-central-directory record)`);
  const tailLen = Math.min(len, 22 + 0xffff);
  const tail = src.read(len - tailLen, tailLen);
  const tv = view(tail);
  let eocd = -1;
  for (let i = tailLen - 22; i >= 0; i--) {
    if (tv.getUint32(i, true) === SIG_EOCD && i + 22 + tv.getUint16(i + 20, true) === tailLen) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new ZipError(source, 'no end-of-central-directory record: the file is truncated or not a zip archive');
  const eocdPos = len - tailLen + eocd;
  const disk = tv.getUint16(eocd + 4, true), cdDisk = tv.getUint16(eocd + 6, true);
  let count = tv.getUint16(eocd + 10, true);
  let cdSize = tv.getUint32(eocd + 12, true);
  let cdOffset = tv.getUint32(eocd + 16, true);
  if (count === U16_MAX || cdSize === U32_MAX || cdOffset === U32_MAX) {
    if (eocdPos < 20) throw new ZipError(source, 'ZIP64 end-of-central-directory locator is missing');
    const loc = view(src.read(eocdPos - 20, 20));
    if (loc.getUint32(0, true) !== SIG_ZIP64_LOCATOR) throw new ZipError(source, 'ZIP64 end-of-central-directory locator is missing');
    const recPos = u64(loc, 8, source, 'ZIP64 record offset');
    if (recPos + 56 > eocdPos) throw new ZipError(source, `ZIP64 end-of-central-directory record offset ${recPos} is out of range`);
    const rec = view(src.read(recPos, 56));
    if (rec.getUint32(0, true) !== SIG_ZIP64_EOCD) throw new ZipError(source, `no ZIP64 end-of-central-directory record at ${recPos}`);
    if (rec.getUint32(16, true) !== 0 || rec.getUint32(20, true) !== 0) throw new ZipError(source, 'multi-disk archives are not supported');
    count = u64(rec, 32, source, 'entry count');
    cdSize = u64(rec, 40, source, 'central directory size');
    cdOffset = u64(rec, 48, source, 'central directory offset');
  } else if (disk !== 0 || cdDisk !== 0) throw new ZipError(source, 'multi-disk archives are not supported');
  if (cdOffset + cdSize > len) throw new ZipError(source, `central directory [${cdOffset}, ${cdOffset + cdSize}) runs past the end of the file (${len} bytes): truncated`);
  const cd = src.read(cdOffset, cdSize);
  const cv = view(cd);
  const entries: ZipEntry[] = [];
  let p = 0;
  const dec = new TextDecoder('utf-8', { fatal: false });
  for (let i = 0; i < count; i++) {
    if (p + 46 > cdSize || cv.getUint32(p, true) !== SIG_CENTRAL) throw new ZipError(source, `central directory entry ${i} is corrupt`);
    const flags = cv.getUint16(p + 8, true);
    const method = cv.getUint16(p + 10, true);
    const crc = cv.getUint32(p + 16, true);
    let compressedSize = cv.getUint32(p + 20, true);
    let size = cv.getUint32(p + 24, true);
    const nameLen = cv.getUint16(p + 28, true), extraLen = cv.getUint16(p + 30, true), commentLen = cv.getUint16(p + 32, true);
    let localHeaderOffset = cv.getUint32(p + 42, true);
    if (p + 46 + nameLen + extraLen + commentLen > cdSize) throw new ZipError(source, `central directory entry ${i} runs past the directory`);
    const name = dec.decode(cd.subarray(p + 46, p + 46 + nameLen));
    // ZIP64 extended information: the fields that are 0xffffffff, in this order
    let e = p + 46 + nameLen;
    const extraEnd = e + extraLen;
    while (e + 4 <= extraEnd) {
      const id = cv.getUint16(e, true), n = cv.getUint16(e + 2, true);
      if (id === 0x0001) {
        let q = e + 4;
        const take = (what: string) => {
          if (q + 8 > e + 4 + n) throw new ZipError(source, `entry '${name}': ZIP64 extra field is too short for the ${what}`);
          const v = u64(cv, q, source, `entry '${name}' ${what}`);
          q += 8;
          return v;
        };
        if (size === U32_MAX) size = take('size');
        if (compressedSize === U32_MAX) compressedSize = take('compressed size');
        if (localHeaderOffset === U32_MAX) localHeaderOffset = take('header offset');
      }
      e += 4 + n;
    }
    entries.push({ name, method, flags, crc32: crc, compressedSize, size, localHeaderOffset });
    p += 46 + nameLen + extraLen + commentLen;
  }
  return entries;
}

/** The bytes of one entry (inflated when deflated), with its size and CRC-32 checked. */
export function readZipEntry(src: ByteSource, entry: ZipEntry, source: string): Uint8Array {
  const where = `entry '${entry.name}'`;
  if (entry.flags & 1) throw new ZipError(source, `${where} is encrypted`);
  if (entry.method !== 0 && entry.method !== 8) throw new ZipError(source, `${where} uses compression method ${entry.method}; only stored (0) and deflate (8) are supported`);
  if (entry.localHeaderOffset + 30 > src.length) throw new ZipError(source, `${where}: local header at ${entry.localHeaderOffset} is past the end of the file`);
  const lh = view(src.read(entry.localHeaderOffset, 30));
  if (lh.getUint32(0, true) !== SIG_LOCAL) throw new ZipError(source, `${where}: no local header at ${entry.localHeaderOffset}`);
  const start = entry.localHeaderOffset + 30 + lh.getUint16(26, true) + lh.getUint16(28, true);
  if (start + entry.compressedSize > src.length)
    throw new ZipError(source, `${where}: data [${start}, ${start + entry.compressedSize}) runs past the end of the file (${src.length} bytes): truncated`);
  let data = src.read(start, entry.compressedSize);
  if (entry.method === 8) {
    try {
      // never more than the directory's size: a deflate bomb fails here instead of filling memory
      data = new Uint8Array(zlib.inflateRawSync(data, { maxOutputLength: Math.max(1, entry.size) }));
    } catch (e) {
      throw new ZipError(source, `${where}: deflate data is corrupt (${(e as Error).message})`);
    }
  }
  if (data.length !== entry.size) throw new ZipError(source, `${where}: ${data.length} bytes, but the directory says ${entry.size}`);
  const c = crc32(data);
  if (c !== entry.crc32) throw new ZipError(source, `${where}: CRC-32 ${c.toString(16)} does not match the directory's ${entry.crc32.toString(16)}: the file is corrupt`);
  return data;
}

// ---- writing ----------------------------------------------------------------------------------

export interface ZipWriterOptions {
  /** Data alignment of every entry in bytes (default 64, as PyTorch). */
  align?: number;
  /** Write ZIP64 records even when nothing needs them (tests). */
  forceZip64?: boolean;
}

interface Written {
  name: Uint8Array;
  crc: number;
  size: number;
  offset: number;
}

/** Writes a stored-entries zip archive chunk by chunk through `write`. */
export class ZipWriter {
  private pos = 0;
  private readonly entries: Written[] = [];
  private readonly align: number;
  private readonly force64: boolean;
  private finished = false;

  constructor(private readonly write: (chunk: Uint8Array) => void, opts: ZipWriterOptions = {}) {
    this.align = opts.align ?? 64;
    this.force64 = opts.forceZip64 ?? false;
    if (!(Number.isInteger(this.align) && this.align >= 1 && this.align <= 4096)) throw new RangeError(`ZipWriter: align must be an integer in [1, 4096], got ${this.align}`);
  }

  private out(b: Uint8Array): void {
    this.write(b);
    this.pos += b.length;
  }

  /** Adds one stored entry whose data is `parts` back to back. */
  add(name: string, parts: Uint8Array | readonly Uint8Array[]): void {
    if (this.finished) throw new Error('ZipWriter: add after finish');
    const chunks = parts instanceof Uint8Array ? [parts] : parts;
    let size = 0, crc = 0;
    for (const c of chunks) {
      size += c.length;
      crc = crc32(c, crc);
    }
    const nameBytes = new TextEncoder().encode(name);
    if (nameBytes.length > U16_MAX) throw new RangeError(`ZipWriter: entry name is too long (${nameBytes.length} bytes)`);
    const offset = this.pos;
    const zip64 = this.force64 || size >= U32_MAX;
    const z64Len = zip64 ? 20 : 0;
    // padding extra field (id 'FB', as PyTorch's writer) so the data starts on an `align` boundary
    const before = offset + 30 + nameBytes.length + z64Len + 4;
    const pad = (this.align - (before % this.align)) % this.align;
    const extraLen = z64Len + 4 + pad;
    const h = new Uint8Array(30 + nameBytes.length + extraLen);
    const dv = view(h);
    dv.setUint32(0, SIG_LOCAL, true);
    dv.setUint16(4, zip64 ? 45 : 20, true); // version needed
    dv.setUint16(6, 0, true); // flags
    dv.setUint16(8, 0, true); // stored
    dv.setUint16(10, 0, true); // time
    dv.setUint16(12, 0x21, true); // date: 1980-01-01
    dv.setUint32(14, crc, true);
    dv.setUint32(18, zip64 ? U32_MAX : size, true);
    dv.setUint32(22, zip64 ? U32_MAX : size, true);
    dv.setUint16(26, nameBytes.length, true);
    dv.setUint16(28, extraLen, true);
    h.set(nameBytes, 30);
    let e = 30 + nameBytes.length;
    if (zip64) {
      dv.setUint16(e, 0x0001, true);
      dv.setUint16(e + 2, 16, true);
      dv.setBigUint64(e + 4, BigInt(size), true);
      dv.setBigUint64(e + 12, BigInt(size), true);
      e += 20;
    }
    dv.setUint16(e, 0x4246, true);
    dv.setUint16(e + 2, pad, true);
    this.out(h);
    for (const c of chunks) if (c.length) this.out(c);
    this.entries.push({ name: nameBytes, crc, size, offset });
  }

  /** Writes the central directory and the end records. */
  finish(): void {
    if (this.finished) return;
    this.finished = true;
    const cdStart = this.pos;
    for (const w of this.entries) {
      const big = this.force64 || w.size >= U32_MAX || w.offset >= U32_MAX;
      const fields = big ? [w.size, w.size, w.offset] : [];
      const extraLen = big ? 4 + 8 * fields.length : 0;
      const h = new Uint8Array(46 + w.name.length + extraLen);
      const dv = view(h);
      dv.setUint32(0, SIG_CENTRAL, true);
      dv.setUint16(4, big ? 45 : 20, true); // version made by (MS-DOS attributes)
      dv.setUint16(6, big ? 45 : 20, true); // version needed
      dv.setUint16(8, 0, true);
      dv.setUint16(10, 0, true);
      dv.setUint16(12, 0, true);
      dv.setUint16(14, 0x21, true);
      dv.setUint32(16, w.crc, true);
      dv.setUint32(20, big ? U32_MAX : w.size, true);
      dv.setUint32(24, big ? U32_MAX : w.size, true);
      dv.setUint16(28, w.name.length, true);
      dv.setUint16(30, extraLen, true);
      dv.setUint16(32, 0, true); // comment
      dv.setUint16(34, 0, true); // disk
      dv.setUint16(36, 0, true); // internal attributes
      dv.setUint32(38, 0, true); // external attributes
      dv.setUint32(42, big ? U32_MAX : w.offset, true);
      h.set(w.name, 46);
      if (big) {
        let e = 46 + w.name.length;
        dv.setUint16(e, 0x0001, true);
        dv.setUint16(e + 2, 8 * fields.length, true);
        e += 4;
        for (const f of fields) {
          dv.setBigUint64(e, BigInt(f), true);
          e += 8;
        }
      }
      this.out(h);
    }
    const cdSize = this.pos - cdStart;
    const n = this.entries.length;
    const zip64 = this.force64 || n >= U16_MAX || cdStart >= U32_MAX || cdSize >= U32_MAX;
    if (zip64) {
      const recPos = this.pos;
      const r = new Uint8Array(56 + 20);
      const dv = view(r);
      dv.setUint32(0, SIG_ZIP64_EOCD, true);
      dv.setBigUint64(4, 44n, true); // size of the rest of the record
      dv.setUint16(12, 45, true);
      dv.setUint16(14, 45, true);
      dv.setUint32(16, 0, true);
      dv.setUint32(20, 0, true);
      dv.setBigUint64(24, BigInt(n), true);
      dv.setBigUint64(32, BigInt(n), true);
      dv.setBigUint64(40, BigInt(cdSize), true);
      dv.setBigUint64(48, BigInt(cdStart), true);
      dv.setUint32(56, SIG_ZIP64_LOCATOR, true);
      dv.setUint32(60, 0, true);
      dv.setBigUint64(64, BigInt(recPos), true);
      dv.setUint32(72, 1, true);
      this.out(r);
    }
    const end = new Uint8Array(22);
    const dv = view(end);
    dv.setUint32(0, SIG_EOCD, true);
    dv.setUint16(8, zip64 ? U16_MAX : n, true);
    dv.setUint16(10, zip64 ? U16_MAX : n, true);
    dv.setUint32(12, zip64 ? U32_MAX : cdSize, true);
    dv.setUint32(16, zip64 ? U32_MAX : cdStart, true);
    this.out(end);
  }
}

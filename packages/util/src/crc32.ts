/** CRC-32 (IEEE 802.3, the one zip and PNG use). */
import * as zlib from 'node:zlib';

let crcTable: Uint32Array | undefined;

/** The table-driven reference (used where node:zlib has no crc32, and to check it). */
export function crc32Reference(data: Uint8Array, prev = 0): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let c = ~prev >>> 0;
  for (let i = 0; i < data.length; i++) c = crcTable[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

const nativeCrc = (zlib as unknown as { crc32?: (data: Uint8Array, value?: number) => number }).crc32;

/** CRC-32 of `data`, continuing from `prev` (0 to start): node:zlib's when it has one (Node ≥ 20.15), else the table. */
export function crc32(data: Uint8Array, prev = 0): number {
  // zlib.crc32 takes at most 2^32 - 1 bytes per call on some builds: feed it in slices
  if (nativeCrc) {
    let c = prev;
    for (let off = 0; off < data.length; off += 1 << 30) c = nativeCrc(data.subarray(off, Math.min(data.length, off + (1 << 30))), c);
    return c >>> 0;
  }
  return crc32Reference(data, prev);
}

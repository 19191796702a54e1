import { describe, expect, it } from 'vitest';
import { crc32, crc32Reference } from '../src/index.js';

describe('crc32', () => {
  it('gives the standard check values', () => {
    const ascii = (s: string) => new TextEncoder().encode(s);
    expect(crc32(ascii('123456789'))).toBe(0xcbf43926); // the CRC-32/ISO-HDLC check value
    expect(crc32Reference(ascii('123456789'))).toBe(0xcbf43926);
    expect(crc32(new Uint8Array(0))).toBe(0);
    expect(crc32(ascii('IEND'))).toBe(0xae426082); // the CRC every PNG ends with
  });

  it('native and table agree on random bytes, whole and continued chunk by chunk', () => {
    let seed = 12345;
    const data = Uint8Array.from({ length: 100_003 }, () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 24));
    const whole = crc32Reference(data);
    expect(crc32(data)).toBe(whole);
    let c = 0;
    for (let off = 0; off < data.length; off += 4099) c = crc32(data.subarray(off, off + 4099), c);
    expect(c).toBe(whole);
  });
});

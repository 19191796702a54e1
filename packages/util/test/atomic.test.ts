import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { tempPathFor, writeFileAtomic, writeFileAtomicSync } from '../src/index.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vlmoe-util-atomic-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Files in `d` other than those named (leftover temporaries). */
const others = (d: string, ...keep: string[]) => fs.readdirSync(d).filter((f) => !keep.includes(f));

describe('writeFileAtomicSync', () => {
  it('writes a string as UTF-8, bytes as they are, and a producer chunk by chunk', () => {
    const d = fs.mkdtempSync(path.join(dir, 'kinds-'));
    writeFileAtomicSync(path.join(d, 's.txt'), 'héllo ✓\n');
    expect(fs.readFileSync(path.join(d, 's.txt'), 'utf8')).toBe('héllo ✓\n');
    const bytes = Uint8Array.from({ length: 70_000 }, (_, i) => (i * 31) & 255);
    writeFileAtomicSync(path.join(d, 'b.bin'), bytes);
    expect(new Uint8Array(fs.readFileSync(path.join(d, 'b.bin')))).toEqual(bytes);
    writeFileAtomicSync(path.join(d, 'p.bin'), (write) => {
      for (let off = 0; off < bytes.length; off += 4096) write(bytes.subarray(off, off + 4096));
    });
    expect(new Uint8Array(fs.readFileSync(path.join(d, 'p.bin')))).toEqual(bytes);
    expect(others(d, 's.txt', 'b.bin', 'p.bin')).toEqual([]);
  });

  it('replaces an existing file and keeps its permission bits', () => {
    const p = path.join(dir, 'mode.txt');
    fs.writeFileSync(p, 'old');
    fs.chmodSync(p, 0o640);
    writeFileAtomicSync(p, 'new');
    expect(fs.readFileSync(p, 'utf8')).toBe('new');
    expect(fs.statSync(p).mode & 0o777).toBe(0o640);
  });

  it('an error from the producer after some bytes leaves the old file and no temporary', () => {
    const d = fs.mkdtempSync(path.join(dir, 'fail-'));
    const p = path.join(d, 'x.json');
    writeFileAtomicSync(p, '{"ok":1}');
    expect(() =>
      writeFileAtomicSync(p, (w) => {
        w(Buffer.from('{"torn":'));
        throw new Error('producer failed');
      }),
    ).toThrow('producer failed');
    expect(fs.readFileSync(p, 'utf8')).toBe('{"ok":1}');
    expect(others(d, 'x.json')).toEqual([]);
  });

  it('a missing directory is an error unless mkdir is asked for', () => {
    const p = path.join(dir, 'no', 'such', 'dir', 'f.txt');
    expect(() => writeFileAtomicSync(p, 'x')).toThrow(/ENOENT/);
    expect(fs.existsSync(path.join(dir, 'no'))).toBe(false);
    writeFileAtomicSync(p, 'x', { mkdir: true });
    expect(fs.readFileSync(p, 'utf8')).toBe('x');
  });

  it('temporary names sit beside the target, hidden and distinct', () => {
    const t = path.join(dir, 'model.safetensors');
    const a = tempPathFor(t);
    const b = tempPathFor(t);
    expect(path.dirname(a)).toBe(dir);
    expect(path.basename(a)).toMatch(/^\.model\.safetensors\.\d+\.[0-9a-f]{12}\.tmp$/);
    expect(a).not.toBe(b);
  });
});

describe('writeFileAtomic (async)', () => {
  it('writes what the producer awaits, and an error keeps the old file', async () => {
    const d = fs.mkdtempSync(path.join(dir, 'async-'));
    const p = path.join(d, 'a.txt');
    await writeFileAtomic(p, async (w) => {
      await w(Buffer.from('one '));
      await w(Buffer.from('two'));
    });
    expect(fs.readFileSync(p, 'utf8')).toBe('one two');
    await expect(
      writeFileAtomic(p, async (w) => {
        await w(Buffer.from('half'));
        throw new Error('async producer failed');
      }),
    ).rejects.toThrow('async producer failed');
    expect(fs.readFileSync(p, 'utf8')).toBe('one two');
    expect(others(d, 'a.txt')).toEqual([]);
    await writeFileAtomic(path.join(d, 'deep', 'b.txt'), async (w) => w(Buffer.from('b')), { mkdir: true });
    expect(fs.readFileSync(path.join(d, 'deep', 'b.txt'), 'utf8')).toBe('b');
  });
});

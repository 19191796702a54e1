/**
 * ImagePool: worker results equal in-process results, order across concurrent runs, corrupt
 * images (throw naming the source / skip and count), runInto, close and process exit.
 * Workers run the compiled dist/image/worker.js: build the package first (npm run build).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { Rng } from '../src/rng.js';
import { ImagePool, RAND_AUGMENT_OPS, resolveWorkerScript, transformImage, type ImageJob, type ImageTransformSpec } from '../src/image/index.js';

const here = dirname(fileURLToPath(import.meta.url));
const pkgRoot = resolve(here, '..');
const dataRoot = resolve(pkgRoot, '..', '..', '..', 'shared', 'data');
const cocoDir = join(dataRoot, 'coco-mini', 'train2017');
const coco = readdirSync(cocoDir).filter((f) => f.endsWith('.jpg')).sort().slice(0, 6).map((f) => new Uint8Array(readFileSync(join(cocoDir, f))));
const easy = Array.from({ length: 10 }, (_, i) => new Uint8Array(readFileSync(join(dataRoot, 'easy-vqa', 'train', 'images', `${i}.png`))));
const images = [...coco, ...easy];

const spec: ImageTransformSpec = { size: 96, train: true, randAugment: { n: 2, m: 7, ops: RAND_AUGMENT_OPS } };
const SEED = 1234;
const jobsFor = (n: number, tag: number): ImageJob[] =>
  Array.from({ length: n }, (_, i) => ({ bytes: images[(i * 7 + tag) % images.length]!, keys: [tag, i], source: `set ${tag} row ${i}` }));

const same = (a: Float32Array | null | undefined, b: Float32Array | null | undefined) =>
  !!a && !!b && a.length === b.length && Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

async function expected(jobs: ImageJob[]): Promise<Float32Array[]> {
  const out: Float32Array[] = [];
  for (const j of jobs) out.push(await transformImage(j.bytes, spec, SEED, j.keys));
  return out;
}

const pools: ImagePool[] = [];
const open = (o: Partial<ConstructorParameters<typeof ImagePool>[0]> = {}) => {
  const p = new ImagePool({ spec, seed: SEED, numWorkers: 2, ...o });
  pools.push(p);
  return p;
};
afterAll(async () => {
  for (const p of pools) await p.close();
});

describe('ImagePool', () => {
  it('finds the compiled worker script (build @vlmoe/data before testing)', () => {
    const url = resolveWorkerScript();
    expect(existsSync(fileURLToPath(url))).toBe(true);
  });

  for (const numWorkers of [0, 1, 2]) {
    it(`numWorkers ${numWorkers}: results equal transformImage in this thread, in job order`, async () => {
      const jobs = jobsFor(16, numWorkers);
      const want = await expected(jobs);
      const got = await open({ numWorkers }).run(jobs);
      expect(got.length).toBe(16);
      got.forEach((g, i) => expect(same(g, want[i]), `job ${i}`).toBe(true));
    });
  }

  it('keeps order with several runs in flight and keeps every run separate', async () => {
    const pool = open({ numWorkers: 2 });
    const sets = [jobsFor(9, 10), jobsFor(1, 11), jobsFor(14, 12), jobsFor(5, 13)];
    const wants = await Promise.all(sets.map(expected));
    const gots = await Promise.all(sets.map((s) => pool.run(s)));
    gots.forEach((got, k) => got.forEach((g, i) => expect(same(g, wants[k]![i]), `run ${k} job ${i}`).toBe(true)));
    expect(await pool.run([])).toEqual([]);
  });

  it('runInto writes into a caller buffer (SharedArrayBuffer: directly from the workers)', async () => {
    const pool = open({ numWorkers: 2 });
    const jobs = jobsFor(6, 20);
    const want = await expected(jobs);
    const plane = pool.imageLength;
    expect(plane).toBe(3 * 96 * 96);
    for (const shared of [true, false]) {
      const out = shared ? new Float32Array(new SharedArrayBuffer(4 * (plane * 6 + 10))) : new Float32Array(plane * 6 + 10);
      const ok = await pool.runInto(jobs, out, 10);
      expect(ok).toEqual(Array(6).fill(true));
      want.forEach((w, i) => expect(same(out.subarray(10 + i * plane, 10 + (i + 1) * plane), w), `shared ${shared} job ${i}`).toBe(true));
      expect(out.subarray(0, 10).every((v) => v === 0)).toBe(true);
    }
    await expect(pool.runInto(jobs, new Float32Array(plane), 0)).rejects.toThrow(/runInto needs/);
  });

  it('does not detach or keep the caller bytes (views into a larger buffer are fine)', async () => {
    const pool = open({ numWorkers: 1 });
    const big = new Uint8Array(images[0]!.length + 100);
    big.set(images[0]!, 50);
    const view = big.subarray(50, 50 + images[0]!.length);
    const [r] = await pool.run([{ bytes: view, keys: [1] }]);
    expect(same(r, await transformImage(images[0]!, spec, SEED, [1]))).toBe(true);
    expect(big.byteLength).toBe(images[0]!.length + 100);
  });

  const jpeg = coco[0]!;
  const noise = new Rng(77);
  const corrupt: [string, Uint8Array, RegExp][] = [
    ['truncated JPEG', jpeg.subarray(0, jpeg.length >> 1), /truncated JPEG/],
    ['random bytes', Uint8Array.from({ length: 5000 }, () => noise.int(0, 256)), /unsupported image format/],
    ['empty', new Uint8Array(0), /empty/i],
  ];

  for (const numWorkers of [0, 2]) {
    for (const [what, bytes, message] of corrupt) {
      it(`numWorkers ${numWorkers}: ${what} → an error naming the source and the decoder message`, async () => {
        const pool = open({ numWorkers });
        const jobs = jobsFor(5, 30);
        jobs[3] = { bytes, keys: [0], source: 'coco_train.arrow row 17 column image' };
        const err = await pool.run(jobs).then(() => null, (e: Error) => e);
        expect(err).toBeInstanceOf(Error);
        expect(err!.message).toMatch(/^image pool: cannot decode coco_train\.arrow row 17 column image: /);
        expect(err!.message).toMatch(message);
        // the pool keeps working after a failed run
        const ok = await pool.run(jobsFor(3, 31));
        expect(ok.every((r) => r instanceof Float32Array)).toBe(true);
      });
    }

    it(`numWorkers ${numWorkers}: onError 'skip' yields null, counts and reports`, async () => {
      const pool = open({ numWorkers, onError: 'skip' });
      const jobs = jobsFor(8, 40);
      const want = await expected(jobs);
      jobs[1] = { bytes: corrupt[0]![1], keys: [0], source: 'a.arrow row 1 column image' };
      jobs[6] = { bytes: corrupt[1]![1], keys: [0] };
      const got = await pool.run(jobs);
      expect(got[1]).toBeNull();
      expect(got[6]).toBeNull();
      got.forEach((g, i) => { if (i !== 1 && i !== 6) expect(same(g, want[i]), `job ${i}`).toBe(true); });
      expect(pool.skipped.count).toBe(2);
      const examples = [...pool.skipped.examples].sort(); // in completion order
      expect(examples[0]).toMatch(/cannot decode a\.arrow row 1 column image: truncated JPEG/);
      expect(examples[1]).toMatch(/cannot decode job 6: .*unsupported image format/);
      expect(pool.skipReport()).toMatch(/skipped 2 image/);
      // runInto: a skipped slot is zero-filled and flagged false
      const out = new Float32Array(pool.imageLength * 2).fill(5);
      expect(await pool.runInto([jobs[0]!, jobs[1]!], out)).toEqual([true, false]);
      expect(out.subarray(pool.imageLength).every((v) => v === 0)).toBe(true);
      expect(pool.skipped.count).toBe(3);
    });
  }

  // Opt-in (VLMOE_TEST_WORKER_KILL=1): killing a worker and starting a replacement that loads
  // sharp/libvips again in a new thread crashed the whole test process in 2 of ~7 CI runs
  // (a known libvips re-initialisation hazard); kept runnable until the pool avoids it.
  it.runIf(process.env.VLMOE_TEST_WORKER_KILL === '1')('a worker that dies fails its jobs, and the pool replaces it', async () => {
    const pool = open({ numWorkers: 2 });
    await pool.run(jobsFor(2, 60));
    // JPEGs only: with the native JPEG path no libvips thread works for the worker when it is
    // killed (killing a thread mid-libvips can take the whole process down)
    const jpegJobs = Array.from({ length: 12 }, (_, i) => ({ bytes: coco[i % coco.length]!, keys: [61, i], source: `set 61 row ${i}` }));
    const running = pool.run(jpegJobs).then(() => null, (e: Error) => e);
    await (pool as unknown as { slots: { worker: { terminate(): Promise<number> } }[] }).slots[0]!.worker.terminate();
    expect((await running)?.message).toMatch(/image pool: worker failed: exited with code/);
    const jobs = jobsFor(6, 62);
    const want = await expected(jobs);
    (await pool.run(jobs)).forEach((g, i) => expect(same(g, want[i]), `job ${i}`).toBe(true));
  });

  it('rejects jobs without bytes or with bad keys', async () => {
    const pool = open({ numWorkers: 0 });
    await expect(pool.run([{ bytes: undefined as unknown as Uint8Array, keys: [0], source: 'x' }])).rejects.toThrow(/job 0 \(x\) has no bytes/);
    await expect(pool.run([{ bytes: images[0]!, keys: [0.5] }])).rejects.toThrow(/keys must be an array of safe integers/);
  });

  it('close() terminates the workers and rejects later runs', async () => {
    const pool = new ImagePool({ spec, seed: SEED, numWorkers: 2 });
    await pool.run(jobsFor(2, 50));
    const pending = pool.run(jobsFor(20, 51)).then(() => null, (e: Error) => e);
    await pool.close();
    expect((await pending)?.message).toMatch(/closed/);
    await expect(pool.run(jobsFor(1, 52))).rejects.toThrow(/closed/);
    await pool.close();
  });

  it('an idle pool does not keep the process alive (with or without close)', () => {
    const poolUrl = new URL('../dist/image/pool.js', import.meta.url).href;
    for (const close of [false, true]) {
      const script = `
        import { readFileSync } from 'node:fs';
        const { ImagePool } = await import(${JSON.stringify(poolUrl)});
        const pool = new ImagePool({ spec: { size: 64, train: true }, seed: 1, numWorkers: 2 });
        const bytes = new Uint8Array(readFileSync(${JSON.stringify(join(dataRoot, 'easy-vqa', 'train', 'images', '0.png'))}));
        const r = await pool.run([{ bytes, keys: [0] }, { bytes, keys: [1] }]);
        process.stdout.write('done ' + r.length + ' ' + r[0].length + '\\n');
        ${close ? 'await pool.close();' : ''}
      `;
      const res = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000 });
      expect(res.error, res.stderr).toBeUndefined();
      expect(res.status, res.stderr).toBe(0);
      expect(res.stdout).toContain('done 2 12288');
    }
  });
});

/** Worker thread of the image pool: runs the image pipeline for jobs posted by `ImagePool`. */
import { parentPort, workerData } from 'node:worker_threads';
import sharp from 'sharp';
import { transformInto } from './pipeline.js';
import type { ResolvedSpec } from './spec.js';
import type { WorkerReply, WorkerRequest } from './pool.js';

// One libvips thread per worker (the pool is the parallelism) and no operation cache (every image is new).
sharp.concurrency(1);
sharp.cache(false);

const { spec, seed } = workerData as { spec: ResolvedSpec; seed: number };
const port = parentPort!;
const plane = 3 * spec.size * spec.size;

port.on('message', (msg: WorkerRequest) => {
  const out: Float32Array = msg.target ? new Float32Array(msg.target.buffer, msg.target.byteOffset, plane) : new Float32Array(plane);
  transformInto(msg.bytes, spec, seed, msg.keys, out, 0).then(
    () => {
      if (msg.target) port.postMessage({ id: msg.id, ok: true } satisfies WorkerReply);
      else port.postMessage({ id: msg.id, ok: true, data: out } satisfies WorkerReply, [out.buffer as ArrayBuffer]);
    },
    (e: unknown) => {
      port.postMessage({ id: msg.id, ok: false, message: e instanceof Error ? e.message : String(e) } satisfies WorkerReply);
    },
  );
});

/**
 * Retrieval harness (dual encoder): embed every image of a captions split once and every
 * caption, score all image × text pairs by dot product (cosine when the model normalises)
 * in row blocks with `@vlmoe/tensor`'s matmul, and compute TR@K / IR@K without ever holding
 * the whole score matrix. Writes the top-10 rankings both ways.
 */
import { join } from 'node:path';
import { ArrowReader, Progress } from '@vlmoe/data';
import { writeFileAtomicSync } from '@vlmoe/util';
import { tensor, matmul, scope } from '@vlmoe/tensor';
import { readScores, type ModelAdapter } from '../adapter.js';
import { retrievalMetrics, type RetrievalResult } from '../metrics/index.js';
import { openEvalLoader, resolveTokenizer, textOnlyBatch, type EvalDataOptions } from './data.js';

export interface RetrievalEvalOptions extends EvalDataOptions {
  outDir?: string;
  /** Image rows per score block (default 256). */
  blockRows?: number;
  /** Evaluate only the first N images (and their captions). */
  limitImages?: number;
}

export interface RetrievalEvalResult extends RetrievalResult {
  task: 'retrieval';
  images: number;
  texts: number;
  files: string[];
}

export async function evaluateRetrieval(adapter: ModelAdapter, o: RetrievalEvalOptions): Promise<RetrievalEvalResult> {
  if (!adapter.encodeImages || !adapter.encodeTexts) throw new Error(`evaluateRetrieval: model '${adapter.name}' needs encodeImages and encodeTexts`);
  const tokenizer = resolveTokenizer(o.tokenizer);
  // captions and their images
  const captions: string[] = [];
  const owner: number[] = [];
  const reader = await ArrowReader.open(o.file, { kind: 'captions' });
  for await (const b of reader.batches()) {
    for (let i = 0; i < b.numRows; i++) {
      const row = b.firstRow + i;
      if (o.limitImages !== undefined && row >= o.limitImages) break;
      for (const c of b.value('caption', i) as string[]) {
        captions.push(c);
        owner.push(row);
      }
    }
  }
  const nImages = o.limitImages !== undefined ? Math.min(o.limitImages, reader.numRows ?? 0) : reader.numRows!;
  await reader.close();
  const bs = o.batchSize ?? 32;
  const bar = new Progress(`retrieval ${adapter.name}`, Math.ceil(nImages / bs) + Math.ceil(captions.length / bs), { enabled: o.progress });
  // image embeddings, one per row in file order
  const loader = await openEvalLoader(o, { unit: 'row' });
  const imgChunks: Float32Array[] = [];
  let dim = -1;
  let seen = 0;
  try {
    for await (const batch of loader) {
      const { data, cols } = await readScores(adapter.encodeImages(batch), batch.size, `${adapter.name}.encodeImages`);
      if (dim < 0) dim = cols;
      else if (cols !== dim) throw new Error(`${adapter.name}.encodeImages: embedding size changed from ${dim} to ${cols}`);
      imgChunks.push(data);
      seen += batch.size;
      bar.tick();
      if (seen >= nImages) break;
    }
  } finally {
    await loader.close();
  }
  const img = new Float32Array(nImages * dim);
  let off = 0;
  for (const c of imgChunks) {
    img.set(c.subarray(0, Math.min(c.length, img.length - off)), off);
    off += c.length;
  }
  // text embeddings
  const txt = new Float32Array(captions.length * dim);
  for (let s = 0, bi = 0; s < captions.length; s += bs, bi++) {
    const chunk = captions.slice(s, s + bs);
    const { data, cols } = await readScores(adapter.encodeTexts(textOnlyBatch(tokenizer, chunk, o.maxTextLen, bi)), chunk.length, `${adapter.name}.encodeTexts`);
    if (cols !== dim) throw new Error(`${adapter.name}.encodeTexts: text embeddings have ${cols} dims, image embeddings ${dim}`);
    txt.set(data, s * dim);
    bar.tick();
  }
  bar.finish();
  const nTexts = captions.length;
  const blockRows = o.blockRows ?? 256;
  const txtT = tensor(txt, { shape: [nTexts, dim] });
  const txtTt = txtT.t().contiguous();
  const scoreBlock = (r0: number, r1: number): Float32Array =>
    scope(() => {
      const a = tensor(img.subarray(r0 * dim, r1 * dim), { shape: [r1 - r0, dim] });
      return matmul(a, txtTt).dataSync() as Float32Array;
    });
  // top-10 rankings both ways, gathered block by block
  const K = Math.min(10, nTexts, nImages);
  const topTexts: number[][] = [];
  const topImages: { idx: number[]; score: number[] }[] = Array.from({ length: nTexts }, () => ({ idx: [], score: [] }));
  const textToImage = Int32Array.from(owner);
  let result: RetrievalResult;
  try {
    for (let r0 = 0; r0 < nImages; r0 += blockRows) {
      const r1 = Math.min(nImages, r0 + blockRows);
      const block = scoreBlock(r0, r1);
      for (let i = r0; i < r1; i++) {
        const row = block.subarray((i - r0) * nTexts, (i - r0 + 1) * nTexts);
        const best = { idx: [] as number[], score: [] as number[] };
        for (let t = 0; t < nTexts; t++) {
          insertTop(best, t, row[t]!, K);
          insertTop(topImages[t]!, i, row[t]!, K);
        }
        topTexts.push(best.idx);
      }
    }
    // the per-query ranks too: what a paired comparison of two models resamples (stats/per_example.ts)
    result = retrievalMetrics({ numImages: nImages, numTexts: nTexts, scoreBlock, blockRows }, textToImage, { ranks: true });
  } finally {
    txtT.dispose();
    txtTt.dispose();
  }
  const files: string[] = [];
  if (o.outDir) {
    const p = join(o.outDir, 'retrieval_rankings.json');
    writeFileAtomicSync(p, JSON.stringify({ textToImage: owner, imageToTopTexts: topTexts, textToTopImages: topImages.map((x) => x.idx) }) + '\n', { mkdir: true });
    files.push(p);
  }
  return { task: 'retrieval', images: nImages, texts: nTexts, ...result, files };
}

/** Keep the K best (score desc, index asc) in small sorted arrays. */
function insertTop(top: { idx: number[]; score: number[] }, i: number, s: number, K: number): void {
  let pos = top.idx.length;
  if (pos >= K && (top.score[K - 1]! > s || (top.score[K - 1] === s && top.idx[K - 1]! < i))) return; // fast path
  while (pos > 0 && (top.score[pos - 1]! < s || (top.score[pos - 1] === s && top.idx[pos - 1]! > i))) pos--;
  if (pos >= K) return;
  top.idx.splice(pos, 0, i);
  top.score.splice(pos, 0, s);
  if (top.idx.length > K) {
    top.idx.pop();
    top.score.pop();
  }
}

/**
 * How a model plugs into the harnesses: a small adapter over fixed-shape batches from
 * `@vlmoe/data`'s `DataLoader`. Return plain typed arrays or `@vlmoe/tensor` tensors (read
 * back and disposed by the harness). Implement only what the tasks you run need.
 */
import type { Batch } from '@vlmoe/data';
import type { Tensor } from '@vlmoe/tensor';

/** Row-major scores: a typed array or a CPU/CUDA tensor. */
export type Scores = Float32Array | Float64Array | Tensor;

export interface ModelAdapter {
  /** Name shown in reports. */
  name: string;
  /** Parameter counts for the report (Table 1 columns). */
  params?: { total: number; activePerToken: number };
  /** VQA: answer logits `[B, numAnswers]` for a VQA batch. */
  vqaLogits?(batch: Batch): Scores | Promise<Scores>;
  /** NLVR: `[B, 2]` logits (False, True) or `[B]` scores for True (> 0 ⇒ True) for an NLVR2 batch (images, images2). */
  nlvrLogits?(batch: Batch): Scores | Promise<Scores>;
  /** Retrieval: image embeddings `[B, D]` for a batch (its `images`). */
  encodeImages?(batch: Batch): Scores | Promise<Scores>;
  /** Retrieval: text embeddings `[B, D]` for a batch (its `textIds`/`textMask`). */
  encodeTexts?(batch: Batch): Scores | Promise<Scores>;
  /** Optional: ITM match scores `[B]` for aligned (image, text) pairs of a batch. */
  itmScores?(batch: Batch): Scores | Promise<Scores>;
}

/** Read scores as a Float32Array of `rows × cols` (disposes a tensor). */
export async function readScores(s: Scores | Promise<Scores>, rows: number, what: string): Promise<{ data: Float32Array; cols: number }> {
  const v = await s;
  let data: Float32Array;
  if (v instanceof Float32Array) data = v;
  else if (v instanceof Float64Array) data = Float32Array.from(v);
  else {
    const t = v as Tensor;
    const raw = t.dataSync() as ArrayLike<number>;
    data = raw instanceof Float32Array ? raw : Float32Array.from(raw);
    t.dispose();
  }
  if (rows === 0) return { data, cols: 0 };
  if (data.length % rows !== 0) throw new Error(`${what}: got ${data.length} scores for a batch of ${rows} (not a multiple)`);
  for (let i = 0; i < data.length; i++) if (!Number.isFinite(data[i]!)) throw new Error(`${what}: score ${i} is ${data[i]}`);
  return { data, cols: data.length / rows };
}

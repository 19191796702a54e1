/**
 * NLVR harness: batched inference over an NLVR2-layout split (NLVR2, or NLVR1 converted as
 * image pairs), accuracy and consistency, predictions as CSV (`identifier,prediction`, the
 * official format) and JSON.
 */
import { join } from 'node:path';
import { ArrowReader, Progress } from '@vlmoe/data';
import { writeFileAtomicSync } from '@vlmoe/util';
import { readScores, type ModelAdapter } from '../adapter.js';
import { nlvrAccuracy, nlvrConsistency } from '../metrics/index.js';
import { openEvalLoader, type EvalDataOptions } from './data.js';

export interface NlvrEvalOptions extends EvalDataOptions {
  outDir?: string;
}

export interface NlvrEvalResult {
  task: 'nlvr';
  examples: number;
  accuracy: number;
  consistency: number;
  predictions: { identifier: string; sentence: string; prediction: boolean; label: boolean }[];
  files: string[];
}

export async function evaluateNlvr(adapter: ModelAdapter, o: NlvrEvalOptions): Promise<NlvrEvalResult> {
  if (!adapter.nlvrLogits) throw new Error(`evaluateNlvr: model '${adapter.name}' has no nlvrLogits`);
  // identifiers and sentences per (row, statement)
  const meta = new Map<number, { identifier: string; sentences: string[] }>();
  const reader = await ArrowReader.open(o.file, { kind: 'nlvr2' });
  for await (const b of reader.batches()) for (let i = 0; i < b.numRows; i++) meta.set(b.firstRow + i, { identifier: b.string('identifier', i), sentences: b.value('questions', i) as string[] });
  await reader.close();
  const loader = await openEvalLoader(o);
  const predictions: NlvrEvalResult['predictions'] = [];
  const total = o.limitBatches ? Math.min(o.limitBatches, loader.batchesPerEpoch) : loader.batchesPerEpoch;
  const bar = new Progress(`nlvr ${adapter.name}`, total, { enabled: o.progress });
  try {
    let nb = 0;
    for await (const batch of loader) {
      const { data, cols } = await readScores(adapter.nlvrLogits(batch), batch.size, `${adapter.name}.nlvrLogits`);
      if (cols !== 1 && cols !== 2) throw new Error(`${adapter.name}.nlvrLogits: expected 1 or 2 scores per example, got ${cols}`);
      for (let k = 0; k < batch.size; k++) {
        const pred = cols === 2 ? data[2 * k + 1]! > data[2 * k]! : data[k]! > 0;
        const m = meta.get(batch.rowIndex[k]!)!;
        const t = batch.textIndex[k]!;
        const identifier = m.sentences.length > 1 ? `${m.identifier}-${t}` : m.identifier;
        predictions.push({ identifier, sentence: m.sentences[t]!, prediction: pred, label: batch.labels![k] === 1 });
      }
      bar.tick();
      if (++nb >= total) break;
    }
  } finally {
    await loader.close();
  }
  bar.finish();
  const accuracy = nlvrAccuracy(predictions.map((p) => p.prediction), predictions.map((p) => p.label));
  const consistency = nlvrConsistency(predictions.map((p) => ({ identifier: p.identifier, sentence: p.sentence, prediction: p.prediction, label: p.label })));
  const files: string[] = [];
  if (o.outDir) {
    const csv = join(o.outDir, 'nlvr_predictions.csv');
    writeFileAtomicSync(csv, predictions.map((p) => `${p.identifier},${p.prediction ? 'True' : 'False'}`).join('\n') + '\n', { mkdir: true });
    const json = join(o.outDir, 'nlvr_predictions.json');
    writeFileAtomicSync(json, JSON.stringify(predictions) + '\n', { mkdir: true });
    files.push(csv, json);
  }
  return { task: 'nlvr', examples: predictions.length, accuracy, consistency, predictions, files };
}

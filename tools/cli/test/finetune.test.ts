import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { loadCheckpointWeights } from '@vlmoe/parallel';
import * as T from '@vlmoe/tensor';

const cli = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const launcher = fileURLToPath(new URL('../../../packages/parallel/dist/launcher.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'vlmoe-finetune-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const env = { ...process.env, VLMOE_PROGRESS: '0' };
const runs = join(dir, 'runs'), data = `shapes:${join(dir, 'shapes')}`;

function config(name: string, o: object): string {
  const p = join(dir, `${name}.json`);
  writeFileSync(p, JSON.stringify({ name, data, runs, batch: 8, warmup: 1, checkpointEvery: 2, ...o }));
  return p;
}
const vlmoe = (...args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 300_000, env });
const metrics = (name: string) => readFileSync(join(runs, name, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { step: number; loss: number; task: number; tokensPerSec: number });
const result = (name: string, split = 'val') => JSON.parse(readFileSync(join(runs, name, 'eval', split, 'result.json'), 'utf8')) as Record<string, unknown>;

beforeAll(() => {
  const r = vlmoe('pretrain', '--config', config('pre', { experts: 2, steps: 4, textLen: 24 }));
  expect(r.status, r.stdout + r.stderr).toBe(0);
  // the pretraining run's report: zero-shot retrieval with its ITC head
  expect(r.stdout).toMatch(/eval pre \(retrieval, val, step 4\): TR@1 .* on 238 images \/ 238 captions/);
}, 300_000);

describe('vlmoe finetune / eval', () => {
  test('vqa from a pretraining run: loads its weights (only the head is new), trains, evaluates with the official metric', () => {
    const r = vlmoe('finetune', '--config', config('vqa', { task: 'vqa', init: join(runs, 'pre'), steps: 4, textLen: 16 }));
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/2 experts top-1.*from .*pre\/checkpoints \(step4; new: head\)/);
    expect(metrics('vqa').map((m) => m.step)).toEqual([1, 2, 3, 4]);
    const res = result('vqa');
    expect(res.task).toBe('vqa');
    expect(res.questions).toBe(1500);
    expect(res.accuracy as number).toBeGreaterThanOrEqual(0);
    expect(res.accuracy as number).toBeLessThanOrEqual(1);
    expect(existsSync(join(runs, 'vqa', 'eval', 'val', 'vqa_results.json'))).toBe(true);
    // the fine-tuned run's config records the model it inherited
    const rec = JSON.parse(readFileSync(join(runs, 'vqa', 'config.json'), 'utf8')) as { experts: number; numAnswers: number };
    expect(rec.experts).toBe(2);
    expect(rec.numAnswers).toBe(28);
    // vlmoe eval re-evaluates the run (test split) from its checkpoint
    const e = vlmoe('eval', '--run', join(runs, 'vqa'), '--split', 'test', '--limit', '2');
    expect(e.status, e.stdout + e.stderr).toBe(0);
    expect(e.stdout).toMatch(/eval vqa \(vqa, test, step 4\): VQA acc/);
    expect(result('vqa', 'test').questions).toBe(128);
  });

  test('nlvr and retrieval from the pretraining run', () => {
    for (const task of ['nlvr', 'retrieval']) {
      const r = vlmoe('finetune', '--config', config(task, { task, init: join(runs, 'pre'), steps: 2, textLen: 24 }));
      expect(r.status, r.stdout + r.stderr).toBe(0);
      expect(r.stdout).toMatch(task === 'nlvr' ? /new: head/ : /new: nothing/);
    }
    const n = result('nlvr');
    expect(n.examples).toBe(125);
    expect(n.consistency as number).toBeGreaterThanOrEqual(0);
    const t = result('retrieval');
    expect([t.images, t.texts]).toEqual([238, 238]); // retrieval_val.arrow: the val images with a caption no other shares, one each
    expect((t.tr as Record<string, number>)['10']).toBeGreaterThanOrEqual((t.tr as Record<string, number>)['1']!);
  });

  test('evalEvery: val-split metrics with the training seconds and FLOPs so far in val.jsonl; a crashed run resumes them exactly', () => {
    const o = { task: 'nlvr', init: join(runs, 'pre'), steps: 4, textLen: 24, evalEvery: 2, evalSplit: 'none' };
    const ref = vlmoe('finetune', '--config', config('ve-ref', o));
    expect(ref.status, ref.stdout + ref.stderr).toBe(0);
    const val = (name: string) => readFileSync(join(runs, name, 'val.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { step: number; seconds: number; flops: number; metrics: { nlvr: number } });
    const a = val('ve-ref');
    expect(a.map((r) => r.step)).toEqual([2, 4]);
    // about the same work every step (MoE layers drop a varying few assignments at capacity)
    expect(a[1]!.flops / a[0]!.flops).toBeGreaterThan(1.95);
    expect(a[1]!.flops / a[0]!.flops).toBeLessThan(2.05);
    expect(a[1]!.seconds).toBeGreaterThan(a[0]!.seconds);
    for (const r of a) expect(r.metrics.nlvr).toBeGreaterThanOrEqual(0);
    const m = metrics('ve-ref') as unknown as { step: number; flops: number; seconds: number }[];
    expect(m[3]!.flops).toBe(a[1]!.flops);
    // killed after step 3 (checkpoint at 2), resumed: the same validations and the same FLOP count
    const crash = vlmoe('finetune', '--config', config('ve', o), '--stop-after', '3');
    expect(crash.signal).toBe('SIGKILL');
    expect(val('ve').map((r) => r.step)).toEqual([2]);
    const resumed = vlmoe('finetune', '--config', config('ve', o), '--resume');
    expect(resumed.status, resumed.stdout + resumed.stderr).toBe(0);
    const b = val('ve');
    expect(b.map((r) => [r.step, r.flops, r.metrics])).toEqual(a.map((r) => [r.step, r.flops, r.metrics]));
    // rank 0 evaluates alone: with expert parallelism it holds only its own experts
    expect(vlmoe('finetune', '--config', config('bad', { ...o, engine: { expert_parallel_size: 2 } })).stderr).toMatch(/'evalEvery' needs expert_parallel_size 1/);
  });

  // retrieval: the contrastive negatives are gathered over the ranks (allGatherRows), so the
  // 2-rank loss over 2×4 pairs is the 1-process loss over 8 pairs
  for (const task of ['vqa', 'retrieval']) {
    test(`${task}: 2 shm ranks (vlmoe-run) train the same model as 1 process on the same global batch`, () => {
      const o = { task, experts: 0, model: { dropPath: 0 }, steps: 4, textLen: 16, evalSplit: 'none' };
      const one = vlmoe('finetune', '--config', config(`${task}-one`, o));
      expect(one.status, one.stdout + one.stderr).toBe(0);
      const two = spawnSync(process.execPath, [launcher, '--nproc', '2', cli, 'finetune', '--config', config(`${task}-two`, o)], { encoding: 'utf8', timeout: 300_000, env });
      expect(two.status, two.stdout + two.stderr).toBe(0);
      expect(two.stdout).toMatch(/2 rank\(s\), global batch 8/);
      const a = metrics(`${task}-one`), b = metrics(`${task}-two`);
      expect(b.length).toBe(4);
      a.forEach((m, i) => expect(Math.abs(b[i]!.loss - m.loss), `step ${m.step}`).toBeLessThan(1e-4 * Math.abs(m.loss)));
      const wa = loadCheckpointWeights(join(runs, `${task}-one`, 'checkpoints')).weights, wb = loadCheckpointWeights(join(runs, `${task}-two`, 'checkpoints')).weights;
      expect(Object.keys(wb).sort()).toEqual(Object.keys(wa).sort());
      let worst = 0;
      for (const k of Object.keys(wa)) worst = Math.max(worst, T.max(T.abs(T.sub(wa[k]!, wb[k]!))).item());
      expect(worst).toBeLessThan(1e-4);
    });
  }

  test('bad fine-tuning configs are named', () => {
    expect(vlmoe('finetune', '--config', config('bad', { task: 'captioning' })).stderr).toMatch(/'task' must be one of "vqa", "nlvr", "retrieval", got "captioning"/);
    expect(vlmoe('finetune', '--config', config('bad', { task: 'vqa', init: join(dir, 'nope') })).stderr).toMatch(/init .*nope has no config\.json/);
    expect(vlmoe('finetune', '--config', config('bad', { task: 'vqa', init: join(runs, 'pre'), experts: 4 })).stderr).toMatch(/loadStateDict: '.*' has shape/);
    expect(vlmoe('finetune', '--config', config('bad', { task: 'vqa', model: { width: 3 } })).stderr).toMatch(/unknown key 'model\.width'/);
    expect(vlmoe('eval', '--run', join(dir, 'nope')).stderr).toMatch(/nope: no config\.json \(not a run folder\)/);
  });
});

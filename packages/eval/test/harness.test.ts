import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { AnswerVocab, BertTokenizer, buildWordPieceTokenizer, convertCocoCaptions, convertEasyVqa, convertNlvr1 } from '@vlmoe/data';
import { colorShapeBaseline, evaluateNlvr, evaluateRetrieval, evaluateVqa, runBenchmarkSuite, barChartSvg, lineChartSvg, curvesFromJsonl, type ModelAdapter } from '../src/index.js';

const here = dirname(fileURLToPath(import.meta.url));
const SHARED = resolve(here, '../../../../shared/data');
const tmp = mkdtempSync(join(tmpdir(), 'vlmoe-eval-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const quiet = { progress: false } as const;
let tokenizer: BertTokenizer;
const files = { vqa: '', nlvr: '', coco: '' };

beforeAll(async () => {
  const d = join(SHARED, 'easy-vqa');
  files.vqa = join(tmp, 'easyvqa_test.arrow');
  await convertEasyVqa({ questions: join(d, 'test/questions.json'), imageDir: join(d, 'test/images'), answers: join(d, 'answers.txt') }, files.vqa, quiet);
  files.nlvr = join(tmp, 'nlvr1_test.arrow');
  await convertNlvr1({ json: join(SHARED, 'nlvr1/test/test.json'), imageDir: join(SHARED, 'nlvr1/test/images') }, files.nlvr, quiet);
  files.coco = join(tmp, 'coco.arrow');
  await convertCocoCaptions({ annotations: join(SHARED, 'coco-mini/annotations/captions_train2017.json'), imageDir: join(SHARED, 'coco-mini/train2017') }, files.coco, quiet);
  // a vocabulary over the questions, sentences and captions
  const texts = [
    ...JSON.parse(readFileSync(join(d, 'test/questions.json'), 'utf8')).map((q: [string]) => q[0]),
    ...readFileSync(join(SHARED, 'nlvr1/test/test.json'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l).sentence),
    ...JSON.parse(readFileSync(join(SHARED, 'coco-mini/annotations/captions_train2017.json'), 'utf8')).annotations.map((a: { caption: string }) => a.caption),
  ];
  tokenizer = BertTokenizer.fromJSON(buildWordPieceTokenizer(texts, { vocabSize: 3000, minFrequency: 1 }));
}, 180_000);

function baseline(): ModelAdapter {
  return colorShapeBaseline({ idToToken: (id) => tokenizer.idToToken(id), answers: AnswerVocab.load(join(tmp, 'easyvqa_test_answers.json')).answers });
}

/** Majority-class "model" to compare the baseline against. */
function constant(): ModelAdapter {
  return {
    name: 'always yes / True',
    vqaLogits: (b) => Float32Array.from({ length: b.size * 13 }, (_, i) => (i % 13 === 4 ? 1 : 0)), // 'yes' is line 5 of answers.txt
    nlvrLogits: (b) => new Float32Array(b.size).fill(1),
  };
}

describe('harnesses end to end on the shared data', () => {
  test('easy-VQA: official accuracy, soft score, results file; the baseline beats always-yes', async () => {
    const out = join(tmp, 'vqa-out');
    const r = await evaluateVqa(baseline(), { file: files.vqa, tokenizer, imageSize: 64, batchSize: 128, outDir: out, ...quiet });
    expect(r.questions).toBe(9673);
    expect(r.accuracy).not.toBeNull();
    const results = JSON.parse(readFileSync(join(out, 'vqa_results.json'), 'utf8'));
    expect(results.length).toBe(9673);
    expect(Object.keys(results[0]).sort()).toEqual(['answer', 'question_id']);
    // easy-VQA has 10 agreeing annotators: official accuracy = soft score = share of exact answers
    expect(r.accuracy!).toBeCloseTo(r.softScore, 6);
    const always = await evaluateVqa(constant(), { file: files.vqa, tokenizer, imageSize: 64, batchSize: 128, ...quiet });
    expect(r.accuracy!).toBeGreaterThan(always.accuracy! + 0.1);
    // check against an independent count on the raw questions
    const raw = JSON.parse(readFileSync(join(SHARED, 'easy-vqa/test/questions.json'), 'utf8')) as [string, string, number][];
    const right = results.filter((p: { question_id: number; answer: string }) => raw[p.question_id]![1] === p.answer).length;
    expect(r.accuracy!).toBeCloseTo(right / raw.length, 6);
  });

  test('NLVR1: accuracy, consistency, CSV predictions', async () => {
    const out = join(tmp, 'nlvr-out');
    const r = await evaluateNlvr(baseline(), { file: files.nlvr, tokenizer, imageSize: 64, batchSize: 64, outDir: out, ...quiet });
    expect(r.examples).toBe(990);
    const csv = readFileSync(join(out, 'nlvr_predictions.csv'), 'utf8').trim().split('\n');
    expect(csv.length).toBe(990);
    expect(csv[0]).toMatch(/^test-\d+-\d,(True|False)$/);
    const right = r.predictions.filter((p) => p.prediction === p.label).length;
    expect(r.accuracy).toBeCloseTo(right / 990, 9);
    expect(r.consistency).toBeLessThanOrEqual(r.accuracy + 1e-9);
  });

  test('retrieval on COCO-mini through score blocks: same metrics whatever the block size', async () => {
    const a = await evaluateRetrieval(baseline(), { file: files.coco, tokenizer, imageSize: 64, batchSize: 32, blockRows: 7, outDir: join(tmp, 'ret'), ...quiet });
    const b = await evaluateRetrieval(baseline(), { file: files.coco, tokenizer, imageSize: 64, batchSize: 32, blockRows: 1000, ...quiet });
    expect(a.images).toBe(130);
    expect(a.texts).toBe(650);
    expect(a.tr).toEqual(b.tr);
    expect(a.ir).toEqual(b.ir);
    const rank = JSON.parse(readFileSync(join(tmp, 'ret', 'retrieval_rankings.json'), 'utf8'));
    expect(rank.imageToTopTexts.length).toBe(130);
    expect(rank.textToTopImages[0].length).toBe(10);
  });

  test('benchmark suite: Table-1-style Markdown, JSON, SVG charts that render', async () => {
    const out = join(tmp, 'suite');
    const metrics = join(tmp, 'metrics.jsonl');
    writeFileSync(metrics, Array.from({ length: 50 }, (_, i) => JSON.stringify({ step: i * 10, loss: 5 * Math.exp(-i / 15) + 0.5, lr: 1e-4 })).join('\n') + '\n');
    const rep = await runBenchmarkSuite({
      title: 'Baselines on the shared data',
      models: [baseline(), constant()],
      tasks: [
        { kind: 'vqa', name: 'easy-VQA', options: { file: files.vqa, tokenizer, imageSize: 64, batchSize: 256, progress: false } },
        { kind: 'nlvr', name: 'NLVR1 test', options: { file: files.nlvr, tokenizer, imageSize: 64, batchSize: 128, progress: false } },
      ],
      outDir: out,
      trainingRuns: [{ name: 'demo', metricsJsonl: metrics, keys: ['loss'] }],
    });
    const md = readFileSync(join(out, 'report.md'), 'utf8');
    if (process.env.VLMOE_KEEP_REPORT) writeFileSync(process.env.VLMOE_KEEP_REPORT, md); // to look at a sample report
    expect(md).toContain('| Model | #Params per token | #Total params | easy-VQA acc | NLVR1 test acc | NLVR1 test cons |');
    expect(md).toMatch(/\| color-shape baseline \| 0 \| 0 \| \d+\.\d\d \| \d+\.\d\d \| \d+\.\d\d \|/);
    const json = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8'));
    expect(json.results.length).toBe(4);
    expect(existsSync(join(out, 'color-shape_baseline', 'easy-VQA', 'vqa_results.json'))).toBe(true);
    // the bar chart renders: the first model's first bar has its palette colour at its centre
    const svg = readFileSync(join(out, 'tasks.svg'), 'utf8');
    const m = svg.match(/<rect class="bar" data-series="color-shape baseline" data-group="easy-VQA acc" x="([\d.]+)" y="([\d.]+)" width="([\d.]+)" height="([\d.]+)" fill="(#[0-9a-f]{6})"\/>/)!;
    expect(m).not.toBeNull();
    const { data, info } = await sharp(Buffer.from(svg)).raw().toBuffer({ resolveWithObject: true });
    expect([info.width, info.height]).toEqual([720, 360]);
    const cx = Math.round(Number(m[1]) + Number(m[3]) / 2);
    const cy = Math.round(Number(m[2]) + Number(m[4]) / 2);
    const at = (cy * info.width + cx) * info.channels;
    const hex = '#' + [0, 1, 2].map((c) => data[at + c]!.toString(16).padStart(2, '0')).join('');
    expect(hex).toBe(m[5]);
    const curves = readFileSync(join(out, 'curves_demo.svg'), 'utf8');
    const png = await sharp(Buffer.from(curves)).png().toBuffer();
    expect(png.length).toBeGreaterThan(1000);
  }, 300_000);
});

describe('SVG charts', () => {
  test('bar heights are proportional to the values; missing values draw no bar', async () => {
    const svg = barChartSvg({ title: 't', groups: ['a', 'b'], series: [{ name: 'm1', values: [50, null] }, { name: 'm2', values: [25, 100] }], yMax: 100 });
    const bars = [...svg.matchAll(/class="bar" data-series="([^"]+)" data-group="([^"]+)" x="[\d.]+" y="[\d.]+" width="[\d.]+" height="([\d.]+)"/g)];
    expect(bars.map((b) => [b[1], b[2]])).toEqual([['m1', 'a'], ['m2', 'a'], ['m2', 'b']]);
    const h = bars.map((b) => Number(b[3]));
    expect(h[0]! / h[1]!).toBeCloseTo(2, 1);
    expect(h[2]! / h[1]!).toBeCloseTo(4, 1);
    expect(svg).not.toContain('<script');
    const escaped = barChartSvg({ title: 'a<b & "c"', groups: ['x'], series: [{ name: 'n', values: [1] }] });
    expect(escaped).toContain('a&lt;b &amp; &quot;c&quot;');
    await sharp(Buffer.from(escaped)).png().toBuffer();
  });

  test('curves from metrics.jsonl; bad lines are named', () => {
    const s = curvesFromJsonl('{"step":1,"loss":2}\n{"step":2,"loss":1,"acc":0.5}\n', ['loss', 'acc']);
    expect(s).toEqual([{ name: 'loss', points: [[1, 2], [2, 1]] }, { name: 'acc', points: [[2, 0.5]] }]);
    expect(() => curvesFromJsonl('{"step":1}\n{oops', ['loss'], 'run/metrics.jsonl')).toThrow(/run\/metrics\.jsonl line 2: invalid JSON/);
    expect(lineChartSvg({ title: 'x', series: s })).toContain('class="line" data-series="loss"');
  });
});

import sharp from 'sharp';
import { describe, expect, test } from 'vitest';
import { curveFromValJsonl, curveSvgs, finalValue, firstReach, formatFlops, runCost, timeToQuality, timeToQualityMarkdown, type Curve } from '../src/index.js';

const curve = (model: string, metric: string, values: number[], secPerStep: number, flopsPerStep: number): Curve => ({
  model, metric, points: values.map((value, i) => ({ step: 10 * (i + 1), seconds: secPerStep * (i + 1), flops: flopsPerStep * (i + 1), value })),
});

describe('time to quality', () => {
  test('firstReach: the first point at or above the target, null when never', () => {
    const c = curve('m', 'vqa', [0.2, 0.5, 0.4, 0.6], 2, 1e9);
    expect(firstReach(c.points, 0.45)).toEqual({ step: 20, seconds: 4, flops: 2e9 });
    expect(firstReach(c.points, 0.6)).toEqual({ step: 40, seconds: 8, flops: 4e9 });
    expect(firstReach(c.points, 0.61)).toBeNull();
    expect(finalValue(c)).toBe(0.6);
    expect(finalValue({ model: 'x', metric: 'vqa', points: [] })).toBeNull();
  });

  test('val.jsonl rows become a curve offset by the pretraining cost; bad rows are named', () => {
    const text = [{ step: 5, seconds: 1.5, flops: 100, metrics: { vqa: 0.3 } }, { step: 10, seconds: 3, flops: 200, metrics: { vqa: 0.4 } }].map((r) => JSON.stringify(r)).join('\n') + '\n';
    const c = curveFromValJsonl(text, { model: 'A', metric: 'vqa', offset: { seconds: 10, flops: 1000 } });
    expect(c.points).toEqual([{ step: 5, seconds: 11.5, flops: 1100, value: 0.3 }, { step: 10, seconds: 13, flops: 1200, value: 0.4 }]);
    expect(() => curveFromValJsonl('{"step":1}\n', { model: 'A', metric: 'vqa', source: 'r/val.jsonl' })).toThrow(/r\/val\.jsonl:1: expected \{step, seconds, flops, metrics: \{vqa: number\}\}/);
    expect(() => curveFromValJsonl('x', { model: 'A', metric: 'vqa' })).toThrow(/val\.jsonl:1: not JSON/);
    expect(runCost('{"step":1,"seconds":2,"flops":3}\n{"step":2,"seconds":4,"flops":6}\n')).toEqual({ seconds: 4, flops: 6 });
    expect(runCost('')).toEqual({ seconds: 0, flops: 0 });
  });

  test('every model against every target model\'s final value; the target reaches its own at its first crossing', () => {
    // the MoE gets to 0.5 at its 2nd validation (4 s); the dense model ends at 0.5, first reached at its 4th (16 s)
    const curves = [curve('MoE', 'vqa', [0.3, 0.5, 0.55, 0.6], 2, 1e9), curve('Dense', 'vqa', [0.2, 0.3, 0.45, 0.5], 4, 1e9), curve('Big', 'vqa', [0.4, 0.7, 0.7, 0.7], 6, 3e9)];
    const rows = timeToQuality(curves, ['Dense', 'Big']);
    const get = (target: string, model: string) => rows.find((r) => r.target === target && r.model === model)!;
    expect(get('Dense', 'MoE').reach).toEqual({ step: 20, seconds: 4, flops: 2e9 });
    expect(get('Dense', 'Dense').targetReach).toEqual({ step: 40, seconds: 16, flops: 4e9 });
    expect(get('Dense', 'Big').reach).toEqual({ step: 20, seconds: 12, flops: 6e9 });
    expect(get('Big', 'MoE').reach).toBeNull();
    // the target's own final value is first reached before its last validation when it plateaus
    expect(get('Big', 'Big').reach).toEqual({ step: 20, seconds: 12, flops: 6e9 });
    expect(rows.length).toBe(6);
    const md = timeToQualityMarkdown(rows, { vqa: 'VQA acc' });
    expect(md).toContain('| VQA acc | Dense (50.00) | MoE | 20 | 4.0 | 2.00 G | 0.25 |');
    expect(md).toContain('| VQA acc | Big (70.00) | MoE | not reached | – | – | – |');
    expect(formatFlops(1.5e15)).toBe('1.50 P');
  });

  test('the curve charts render (sharp), against seconds and against FLOPs', async () => {
    const files = curveSvgs('tr1', 'TR@1', [curve('MoE', 'tr1', [0.1, 0.2], 1, 1e12), curve('Dense', 'tr1', [0.05, 0.1], 1, 1e12)]);
    expect(Object.keys(files)).toEqual(['curve_tr1_seconds.svg', 'curve_tr1_flops.svg']);
    for (const svg of Object.values(files)) {
      const meta = await sharp(Buffer.from(svg)).metadata();
      expect([meta.width, meta.height]).toEqual([720, 360]);
    }
    expect(files['curve_tr1_flops.svg']).toContain('training TFLOPs');
  });
});

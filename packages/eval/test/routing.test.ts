import sharp from 'sharp';
import { describe, expect, test } from 'vitest';
import { heatmapSvg, routingFromJsonl, routingSvgs } from '../src/index.js';

/** metrics.jsonl lines as the trainer writes them: per step, per MoE layer, assignments per expert and the drop rate. */
function jsonl(steps: number, counts: (step: number) => number[], dropRate = 0.1, entropy?: (step: number) => number): string {
  return Array.from({ length: steps }, (_, i) => {
    const c = counts(i + 1);
    const total = c.reduce((a, b) => a + b, 0);
    const h = entropy ? { entropy: entropy(i + 1) } : {};
    return JSON.stringify({ step: i + 1, loss: 1, load: { 'blocks.1.ffn.vision': { max: Math.max(...c), mean: total / c.length, dropRate, ...h, counts: c } } });
  }).join('\n');
}

describe('routing diagnostics', () => {
  test('shares per expert sum to 1 per column; steps are grouped; drop rate and imbalance are assignment-weighted', () => {
    // expert 0 takes everything for the first 10 steps, then the load is uniform
    const text = jsonl(20, (s) => (s <= 10 ? [40, 0, 0, 0] : [10, 10, 10, 10]));
    const [l] = routingFromJsonl(text, 4);
    expect(l!.layer).toBe('blocks.1.ffn.vision');
    expect(l!.steps).toEqual([5, 10, 15, 20]);
    for (let c = 0; c < 4; c++) expect(l!.shares.reduce((a, e) => a + e[c]!, 0)).toBeCloseTo(1, 12);
    expect(l!.shares[0]).toEqual([1, 1, 0.25, 0.25]);
    expect(l!.imbalance).toEqual([4, 4, 1, 1]);
    expect(l!.dropRate.map((x) => Number(x.toFixed(12)))).toEqual([0.1, 0.1, 0.1, 0.1]);
    expect(l!.entropy).toEqual([null, null, null, null]); // not logged
    expect(l!.bias).toBeNull(); // no expert bias
    expect(routingFromJsonl('{"step":1,"loss":2}\n')).toEqual([]); // a dense run has no routing
    expect(() => routingFromJsonl('{"step":1}\nnot json', 4, 'm.jsonl')).toThrow(/m\.jsonl:2: not JSON/);
  });

  test('the heatmap renders (sharp): the busiest cell is the darkest, an idle one white', async () => {
    const svg = heatmapSvg({ title: 't', rows: ['e0', 'e1'], cols: ['1', '2'], values: [[1, 0], [0.5, null]], width: 300, height: 200 });
    const { data, info } = await sharp(Buffer.from(svg)).raw().toBuffer({ resolveWithObject: true });
    expect([info.width, info.height]).toEqual([300, 200]);
    // plot area: x from 90 to 284, y from 34 to 156; cells 97 × 61
    const px = (x: number, y: number) => Array.from(data.subarray((y * info.width + x) * info.channels, (y * info.width + x) * info.channels + 3));
    expect(px(90 + 48, 34 + 30)).toEqual([8, 48, 107]); // value 1 = max
    expect(px(90 + 97 + 48, 34 + 30)).toEqual([255, 255, 255]); // value 0
    expect(px(90 + 97 + 48, 34 + 61 + 30)).toEqual([221, 221, 221]); // no data
    const mid = px(90 + 48, 34 + 61 + 30);
    expect(mid[0]).toBeGreaterThan(100);
    expect(mid[0]).toBeLessThan(160);
  });

  test('router entropy: the mean over a column\'s steps; charted relative to ln E', () => {
    const [l] = routingFromJsonl(jsonl(8, () => [3, 1], 0, (s) => s / 10), 2);
    expect(l!.entropy.map((h) => Number(h!.toFixed(12)))).toEqual([0.25, 0.65]);
    const svg = routingSvgs('r', [l!])['routing_r_balance.svg']!;
    expect(svg).toContain('blocks.1.ffn.vision entropy / ln E');
    expect(routingSvgs('r', routingFromJsonl(jsonl(8, () => [3, 1]), 2))['routing_r_balance.svg']).not.toContain('entropy');
  });

  test('one heatmap per layer and one balance chart per run, named after the run', () => {
    const files = routingSvgs('VL-MoE pretraining', routingFromJsonl(jsonl(8, () => [3, 1]), 4));
    expect(Object.keys(files)).toEqual(['routing_VL-MoE_pretraining_blocks.1.ffn.vision.svg', 'routing_VL-MoE_pretraining_balance.svg']);
    expect(files['routing_VL-MoE_pretraining_blocks.1.ffn.vision.svg']).toContain('uniform = 50 %');
  });

  test('the aux-loss-free expert bias: the value at each column\'s last step, one chart per layer', () => {
    const lines = Array.from({ length: 6 }, (_, i) => JSON.stringify({ step: i + 1, load: { 'blocks.1.vision': { counts: [3, 1], dropRate: 0, bias: [-0.001 * (i + 1), 0.001 * (i + 1)] } } })).join('\n');
    const [l] = routingFromJsonl(lines, 3);
    expect(l!.steps).toEqual([2, 4, 6]);
    expect(l!.bias!.map((b) => b.map((v) => Number(v.toFixed(6))))).toEqual([[-0.002, -0.004, -0.006], [0.002, 0.004, 0.006]]);
    const files = routingSvgs('r', [l!]);
    expect(Object.keys(files)).toContain('routing_r_blocks.1.vision_bias.svg');
    expect(files['routing_r_blocks.1.vision_bias.svg']).toContain('data-series="expert 1"');
  });
});

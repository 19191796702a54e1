/**
 * `vlmoe dashboard`, the way a user starts it (the CLI, a runs folder of real `vlmoe pretrain`
 * runs) and looks at it: in a real browser — headless Chromium, Debian's `chromium` (.ci/run
 * installs it), driven from its command line (`--dump-dom` after the page's scripts ran,
 * `--screenshot`), no browser library. The page's charts must carry the values of metrics.jsonl,
 * a run still writing must show its new lines on the next load, two runs compare side by side,
 * and the server must refuse anything outside the runs folder and listen on loopback only.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';

const cli = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const dir = fs.mkdtempSync(join(os.tmpdir(), 'vlmoe-dashboard-'));
const runs = join(dir, 'runs');
const env = { ...process.env, VLMOE_PROGRESS: '0' };
const chromium = ['chromium', 'chromium-browser'].find((c) => spawnSync(c, ['--version'], { encoding: 'utf8' }).status === 0) ?? null;
let server: ChildProcess | null = null;
let url = '';

function pretrain(name: string, moe: object | null, steps: number): void {
  const p = join(dir, `${name}.json`);
  fs.writeFileSync(p, JSON.stringify({
    name, data: `shapes:${join(dir, 'shapes')}`, runs, preset: 'tiny', experts: moe ? 4 : 0, k: moe ? 2 : 1, steps, batch: 8, textLen: 16, warmup: 2, checkpointEvery: steps, evalSplit: 'none',
    model: moe ? { moe } : {},
  }));
  const r = spawnSync(process.execPath, [cli, 'pretrain', '--config', p], { encoding: 'utf8', env, timeout: 240_000 });
  expect(r.status, `${name}: ${r.stdout}\n${r.stderr}`).toBe(0);
}

type Row = { step: number; loss: number; load?: Record<string, { counts: number[]; bias?: number[] }> };
const metrics = (name: string): Row[] => fs.readFileSync(join(runs, name, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Row);

beforeAll(async () => {
  pretrain('biased', { scoreFunction: 'sigmoid', enableExpertBias: true, biasUpdateRate: 0.01 }, 6);
  pretrain('dense', null, 4);
  // a run still writing: 3 of its lines so far
  const live = join(runs, 'live');
  fs.mkdirSync(live);
  fs.writeFileSync(join(live, 'config.json'), JSON.stringify({ ...JSON.parse(fs.readFileSync(join(runs, 'biased', 'config.json'), 'utf8')), name: 'live', steps: 10 }));
  fs.writeFileSync(join(live, 'metrics.jsonl'), fs.readFileSync(join(runs, 'biased', 'metrics.jsonl'), 'utf8').split('\n').slice(0, 3).join('\n') + '\n');
  // a link out of the runs folder: never listed, never served
  fs.symlinkSync(os.tmpdir(), join(runs, 'escape'));
  server = spawn(process.execPath, [cli, 'dashboard', '--runs', runs, '--port', '0'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  url = await new Promise<string>((resolve, reject) => {
    let out = '';
    server!.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /(http:\/\/127\.0\.0\.1:\d+\/)/.exec(out);
      if (m) resolve(m[1]!);
    });
    server!.once('exit', (code) => reject(new Error(`dashboard exited (${code}): ${out}`)));
  });
}, 600_000);

afterAll(() => {
  server?.kill('SIGTERM');
  fs.rmSync(dir, { recursive: true, force: true });
});

/** A raw GET (the path exactly as given: no URL normalisation) → status and body. */
function get(path: string, method = 'GET'): Promise<{ status: number; type: string; body: string; headers: http.IncomingHttpHeaders }> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: u.hostname, port: u.port, path, method }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode!, type: String(res.headers['content-type']), body, headers: res.headers }));
    });
    req.on('error', reject);
    req.end();
  });
}

type Chart = { id: string; series: { name: string; points: [number, number][] }[]; svg: string };

describe('vlmoe dashboard: the API serves the run folders as they are', () => {
  test("the runs, their state, and every chart's data = metrics.jsonl (loss, expert loads, expert bias)", async () => {
    const list = JSON.parse((await get('/api/runs')).body) as { runs: { name: string; status: string; lastStep: number; steps: number }[] };
    const by = Object.fromEntries(list.runs.map((r) => [r.name, r]));
    expect(Object.keys(by).sort()).toEqual(['biased', 'dense', 'live']);
    expect([by.biased!.status, by.biased!.lastStep, by.dense!.status, by.live!.status, by.live!.lastStep]).toEqual(['finished', 6, 'finished', 'running', 3]);
    const run = JSON.parse((await get('/api/runs/biased')).body) as { charts: Chart[] };
    const m = metrics('biased');
    const loss = run.charts.find((c) => c.id === 'loss')!.series.find((s) => s.name === 'loss')!;
    expect(loss.points).toEqual(m.map((r) => [r.step, r.loss]));
    const layers = Object.keys(m[0]!.load!);
    for (const layer of layers) {
      const heat = run.charts.find((c) => c.id === `routing_biased_${layer}`)!;
      // each expert's share of the layer's assignments at each step (6 steps: one column each)
      heat.series.forEach((s, e) => s.points.forEach(([step, share], i) => {
        const c = m[i]!.load![layer]!.counts;
        expect(step).toBe(m[i]!.step);
        expect(share).toBeCloseTo(c[e]! / c.reduce((a, b) => a + b, 0), 12);
      }));
      const bias = run.charts.find((c) => c.id === `routing_biased_${layer}_bias`)!;
      bias.series.forEach((s, e) => expect(s.points.map(([, v]) => v)).toEqual(m.map((r) => r.load![layer]!.bias![e])));
    }
    const svg = await get(`/api/runs/biased/charts/routing_biased_${layers[0]}_bias.svg`);
    expect([svg.status, svg.type]).toEqual([200, 'image/svg+xml']);
    expect(svg.headers['content-disposition']).toBe(`attachment; filename="routing_biased_${layers[0]}_bias.svg"`);
    expect(svg.body).toMatch(/^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
  });

  test('refuses everything outside the runs folder (traversal, encoded dots, a symbolic link out) and writes; listens on 127.0.0.1 only', async () => {
    for (const p of ['/api/runs/..%2F..%2Fetc', '/api/runs/%2E%2E', '/api/runs/biased%2F..%2F..', '/api/runs/escape', '/../../package.json', '/api/runs/biased/charts/..%2F..%2Fconfig.svg', '/app.js/../../src/main.ts']) {
      const r = await get(p);
      expect(r.status, p).toBe(404);
      expect(r.body, p).not.toMatch(/"dependencies"|"name": ?"@vlmoe|import /);
    }
    expect((await get('/api/runs', 'POST')).status).toBe(405);
    expect(new URL(url).hostname).toBe('127.0.0.1');
    const external = Object.values(os.networkInterfaces()).flat().find((a) => a && a.family === 'IPv4' && !a.internal);
    if (external) {
      const reached = await new Promise<boolean>((resolve) => {
        const req = http.get({ host: external.address, port: new URL(url).port, path: '/api/runs', timeout: 3000 }, () => resolve(true));
        req.on('error', () => resolve(false));
        req.on('timeout', () => (req.destroy(), resolve(false)));
      });
      expect(reached, `the dashboard answered on ${external.address}`).toBe(false);
    }
  });
});

/** The page after its scripts ran, as headless Chromium sees it. */
function dumpDom(page: string): string {
  const r = spawnSync(chromium!, ['--headless=new', '--no-sandbox', '--disable-gpu', '--virtual-time-budget=8000', '--dump-dom', page], { encoding: 'utf8', timeout: 90_000, maxBuffer: 64 << 20 });
  expect(r.status, r.stderr).toBe(0);
  return r.stdout;
}

const unescape = (s: string) => s.replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
/** The figures of the page: run, chart id and the data they plot. */
function figures(dom: string): { run: string; chart: string; series: Chart['series'] }[] {
  return [...dom.matchAll(/<figure class="chart" data-run="([^"]*)" data-chart="([^"]*)" data-points="([^"]*)">/g)].map((m) => ({ run: m[1]!, chart: m[2]!, series: JSON.parse(unescape(m[3]!)) as Chart['series'] }));
}

describe.skipIf(!chromium)('vlmoe dashboard in headless Chromium', () => {
  test('a finished run: every chart on the page, its data = metrics.jsonl; a screenshot renders it', async () => {
    const dom = dumpDom(`${url}?run=biased`);
    expect(dom).toContain('data-ready="true"');
    const figs = figures(dom).filter((f) => f.run === 'biased');
    const api = JSON.parse((await get('/api/runs/biased')).body) as { charts: Chart[] };
    expect(figs.map((f) => f.chart)).toEqual(api.charts.map((c) => c.id));
    expect(figs.find((f) => f.chart === 'loss')!.series.find((s) => s.name === 'loss')!.points).toEqual(metrics('biased').map((r) => [r.step, r.loss]));
    expect((dom.match(/<svg xmlns/g) ?? []).length).toBe(api.charts.length);
    const png = join(dir, 'dashboard-biased.png');
    const r = spawnSync(chromium!, ['--headless=new', '--no-sandbox', '--disable-gpu', '--hide-scrollbars', '--virtual-time-budget=8000', '--window-size=1400,1800', `--screenshot=${png}`, `${url}?run=biased`], { encoding: 'utf8', timeout: 90_000 });
    expect(r.status, r.stderr).toBe(0);
    const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
    expect([info.width, info.height]).toEqual([1400, 1800]);
    // not blank: the charts' lines and the heatmaps' blues are there
    let colored = 0;
    for (let i = 0; i < data.length; i += info.channels) if (Math.max(data[i]!, data[i + 1]!, data[i + 2]!) - Math.min(data[i]!, data[i + 1]!, data[i + 2]!) > 60) colored++;
    expect(colored).toBeGreaterThan(2000);
  }, 180_000);

  test('a run still writing: the next load shows the lines appended since', () => {
    const before = figures(dumpDom(`${url}?run=live`)).find((f) => f.chart === 'loss')!.series[0]!.points.length;
    expect(before).toBe(3);
    const lines = fs.readFileSync(join(runs, 'biased', 'metrics.jsonl'), 'utf8').split('\n');
    fs.appendFileSync(join(runs, 'live', 'metrics.jsonl'), `${lines[3]}\n${lines[4]}\n{"step": 6, "loss": 1.2`); // a half-written last line is not read yet
    const dom = dumpDom(`${url}?run=live`);
    expect(figures(dom).find((f) => f.chart === 'loss')!.series[0]!.points.map(([s]) => s)).toEqual([1, 2, 3, 4, 5]);
    expect(dom).toMatch(/data-run="live" data-last-step="5" data-status="running"/);
  }, 180_000);

  test('two runs side by side: ?run=biased&run=dense shows both, each with its own charts', () => {
    const dom = dumpDom(`${url}?run=biased&run=dense`);
    expect([...dom.matchAll(/<article class="run" data-run="([^"]*)"/g)].map((m) => m[1])).toEqual(['biased', 'dense']);
    const figs = figures(dom);
    expect(figs.filter((f) => f.run === 'dense').some((f) => f.chart.startsWith('routing_'))).toBe(false);
    expect(figs.filter((f) => f.run === 'biased').some((f) => f.chart.endsWith('_bias'))).toBe(true);
    expect(figs.find((f) => f.run === 'dense' && f.chart === 'loss')!.series[0]!.points).toEqual(metrics('dense').map((r) => [r.step, r.loss]));
  }, 180_000);
});

/**
 * `vlmoe dashboard --runs runs/`: a small HTTP server on 127.0.0.1 (loopback only: the page
 * and the runs are for whoever sits at the machine; forward a port over ssh to see them from
 * elsewhere) with a page that lists the runs and shows, live while they train and afterwards,
 * their training curves, per MoE layer the expert-load heatmap, drop rate, imbalance, router
 * entropy and expert bias, validation curves and eval results — two runs side by side to
 * compare. The page's assets ship in the package (assets/dashboard: no CDN, no network); the
 * charts are the study report's SVGs, rendered here from the run folders as they are
 * (runs.ts) and exportable as files.
 *
 * Routes (GET only): `/` and the page's own assets; `/api/runs` (the list); `/api/runs/<name>`
 * (a run's view with its charts' SVG and data); `/api/runs/<name>/charts/<id>.svg` (one chart
 * as a file). Anything else, or a name that is not a run of the runs folder, is a 404 that
 * touches no file.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { listRuns, readRun } from './runs.js';

/** The page's files (a fixed list: no URL path reaches the file system). */
const ASSETS: Record<string, { file: string; type: string }> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/index.html': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/style.css': { file: 'style.css', type: 'text/css; charset=utf-8' },
};
const ASSET_DIR = fileURLToPath(new URL('../../assets/dashboard/', import.meta.url));

/** The default port of `vlmoe dashboard`. */
export const DEFAULT_DASHBOARD_PORT = 8787;

export interface Dashboard {
  url: string;
  server: http.Server;
  close(): Promise<void>;
}

function send(res: http.ServerResponse, status: number, type: string, body: string | Buffer, extra: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store', 'x-content-type-options': 'nosniff', ...extra });
  res.end(body);
}

const json = (res: http.ServerResponse, status: number, v: unknown) => send(res, status, 'application/json; charset=utf-8', JSON.stringify(v));

function handle(root: string, req: http.IncomingMessage, res: http.ServerResponse): void {
  if (req.method !== 'GET' && req.method !== 'HEAD') return json(res, 405, { error: `${req.method} is not served: the dashboard only reads` });
  let pathname: string;
  try {
    pathname = decodeURIComponent(new URL(req.url ?? '/', 'http://127.0.0.1').pathname);
  } catch {
    return json(res, 400, { error: 'malformed URL' });
  }
  const asset = ASSETS[pathname];
  if (asset) return send(res, 200, asset.type, fs.readFileSync(path.join(ASSET_DIR, asset.file)));
  if (pathname === '/api/runs') return json(res, 200, { root, runs: listRuns(root) });
  const m = /^\/api\/runs\/([^/]+)(?:\/charts\/([^/]+)\.svg)?$/.exec(pathname);
  if (m) {
    const run = readRun(root, m[1]!);
    if (!run) return json(res, 404, { error: `no run '${m[1]}' in ${root}` });
    if (m[2] === undefined) return json(res, 200, run);
    const chart = run.charts.find((c) => c.id === m[2]);
    if (!chart) return json(res, 404, { error: `run '${run.name}' has no chart '${m[2]}'` });
    return send(res, 200, 'image/svg+xml', chart.svg, { 'content-disposition': `attachment; filename="${chart.id}.svg"` });
  }
  return json(res, 404, { error: `nothing at ${pathname}` });
}

/** Serves the dashboard of the runs folder `runs` on 127.0.0.1:`port` (0: any free port). */
export function startDashboard(o: { runs: string; port?: number }): Promise<Dashboard> {
  const root = path.resolve(o.runs);
  if (!fs.existsSync(root) || !fs.statSync(root).isDirectory()) throw new Error(`dashboard: runs folder '${o.runs}' does not exist`);
  const server = http.createServer((req, res) => {
    try {
      handle(root, req, res);
    } catch (e) {
      json(res, 500, { error: (e as Error).message });
    }
  });
  return new Promise((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => reject(e.code === 'EADDRINUSE' ? new Error(`dashboard: port ${o.port} is in use (--port 0 picks a free one)`) : e));
    server.listen(o.port ?? DEFAULT_DASHBOARD_PORT, '127.0.0.1', () => {
      const a = server.address() as { address: string; port: number };
      resolve({ url: `http://${a.address}:${a.port}/`, server, close: () => new Promise((r) => server.close(() => r())) });
    });
  });
}

#!/usr/bin/env node
/**
 * vlmoe-run: torchrun for vlmoe on one machine.
 *
 *   vlmoe-run --nproc N [--backend shm] [--timeout-ms MS] script.js [args…]
 *
 * Starts N copies of `node script.js args…` with torchrun's variables (RANK, LOCAL_RANK,
 * WORLD_SIZE, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT) plus VLMOE_BACKEND and a fresh
 * VLMOE_SHM_NAME, prefixes every output line with its rank, and exits with the first
 * non-zero exit status (after giving the other ranks the collective timeout to notice and
 * fail, then stopping them).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { realpathSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';

interface Args {
  nproc: number;
  backend: string;
  timeoutMs: number | null;
  script: string;
  rest: string[];
}

const USAGE = 'usage: vlmoe-run --nproc N [--backend shm] [--timeout-ms MS] script.js [args…]';

export function parseArgs(argv: string[]): Args {
  let nproc = 1, backend = 'shm', timeoutMs: number | null = null;
  let i = 0;
  for (; i < argv.length; i++) {
    const a = argv[i]!;
    const val = () => {
      const v = a.includes('=') ? a.slice(a.indexOf('=') + 1) : argv[++i];
      if (v === undefined) throw new Error(`vlmoe-run: ${a} needs a value\n${USAGE}`);
      return v;
    };
    if (a === '--nproc' || a.startsWith('--nproc=') || a === '--nproc-per-node' || a.startsWith('--nproc-per-node=')) {
      nproc = Number(val());
      if (!Number.isInteger(nproc) || nproc < 1 || nproc > 64) throw new Error(`vlmoe-run: --nproc must be an integer in [1, 64]\n${USAGE}`);
    } else if (a === '--backend' || a.startsWith('--backend=')) backend = val();
    else if (a === '--timeout-ms' || a.startsWith('--timeout-ms=')) {
      timeoutMs = Number(val());
      if (!(timeoutMs > 0)) throw new Error('vlmoe-run: --timeout-ms must be a positive number');
    } else if (a === '-h' || a === '--help') throw new Error(USAGE);
    else if (a.startsWith('-')) throw new Error(`vlmoe-run: unknown option ${a}\n${USAGE}`);
    else break;
  }
  if (i >= argv.length) throw new Error(`vlmoe-run: no script given\n${USAGE}`);
  if (backend !== 'shm') throw new Error(`vlmoe-run: backend '${backend}' cannot be launched here (shm only so far; MPI jobs start with mpirun)`);
  return { nproc, backend, timeoutMs, script: argv[i]!, rest: argv.slice(i + 1) };
}

function pipe(stream: NodeJS.ReadableStream, prefix: string, out: NodeJS.WritableStream): void {
  createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => out.write(`${prefix}${line}\n`));
}

export async function run(a: Args): Promise<number> {
  const port = 20000 + Math.floor(Math.random() * 40000);
  const shmName = `/vlmoe-${process.pid}-${randomBytes(6).toString('hex')}`;
  const timeout = a.timeoutMs ?? Number(process.env.VLMOE_COMM_TIMEOUT_MS ?? 120_000);
  const children: ChildProcess[] = [];
  let firstFailure = 0;
  let killTimer: NodeJS.Timeout | null = null;
  const exits = Array.from({ length: a.nproc }, (_, rank) => new Promise<number>((resolve) => {
    const env = {
      ...process.env, RANK: String(rank), LOCAL_RANK: String(rank), WORLD_SIZE: String(a.nproc), LOCAL_WORLD_SIZE: String(a.nproc),
      MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(port), VLMOE_BACKEND: a.backend, VLMOE_SHM_NAME: shmName, VLMOE_COMM_TIMEOUT_MS: String(timeout),
    };
    const child = spawn(process.execPath, [a.script, ...a.rest], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    const prefix = a.nproc > 1 ? `[rank ${rank}] ` : '';
    pipe(child.stdout!, prefix, process.stdout);
    pipe(child.stderr!, prefix, process.stderr);
    child.on('error', (e) => {
      process.stderr.write(`vlmoe-run: rank ${rank} could not start: ${e.message}\n`);
      resolve(127);
    });
    child.on('exit', (code, signal) => {
      const status = code ?? (signal ? 128 + 15 : 1);
      if (status !== 0) {
        process.stderr.write(`vlmoe-run: rank ${rank} exited with ${code !== null ? `status ${code}` : `signal ${signal}`}\n`);
        if (!firstFailure) {
          firstFailure = status;
          // the others notice within the collective timeout; stop whoever is left after it
          killTimer = setTimeout(() => {
            for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
          }, timeout + 5000);
        }
      }
      resolve(status);
    });
  }));
  const forward = (sig: NodeJS.Signals) => () => {
    for (const c of children) c.kill(sig);
  };
  process.on('SIGINT', forward('SIGINT'));
  process.on('SIGTERM', forward('SIGTERM'));
  const codes = await Promise.all(exits);
  if (killTimer) clearTimeout(killTimer);
  return firstFailure || codes.find((c) => c !== 0) || 0;
}

/** The command: parses argv, runs the ranks, exits with their status (`--help`: the usage, status 0). */
export function main(argv: string[]): void {
  let args: Args;
  try {
    args = parseArgs(argv);
  } catch (e) {
    // --help (parseArgs answers it with the bare usage) is not an error
    const help = (e as Error).message === USAGE;
    (help ? console.log : console.error)((e as Error).message);
    process.exit(help ? 0 : 2);
  }
  run(args).then((code) => process.exit(code));
}

const isMain = !!process.argv[1] && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href;
if (isMain) main(process.argv.slice(2));

#!/usr/bin/env node
/**
 * vlmoe-run: torchrun for vlmoe (torchrun's option names are accepted).
 *
 *   vlmoe-run --nproc_per_node N [--backend shm|mpi|nccl] [--nnodes M --hostfile F] script.js [args…]
 *
 * shm and nccl: the ranks of this machine, started here. mpi: `mpirun` starts them, on every
 * machine of the hostfile (multi-machine jobs go through MPI, started from one command).
 * Starts N copies of `node script.js args…` with torchrun's variables (RANK, LOCAL_RANK,
 * WORLD_SIZE, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT) plus VLMOE_BACKEND and a fresh
 * VLMOE_SHM_NAME, prefixes every output line with its rank, and exits with the first
 * non-zero exit status (after giving the other ranks the collective timeout to notice and
 * fail, then stopping them).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';
import { parseArgs as parseNodeArgs } from 'node:util';

interface Args {
  nproc: number;
  backend: 'shm' | 'mpi' | 'nccl';
  nnodes: number;
  hostfile: string | null;
  masterAddr: string;
  masterPort: number | null;
  timeoutMs: number | null;
  /** Print the command (mpi) or the ranks' environment instead of starting them. */
  dryRun: boolean;
  script: string;
  rest: string[];
}

const USAGE = `usage: vlmoe-run [options] script.js [args…]

Starts the ranks of a job on this machine, like torchrun (its option names are accepted).

  --nproc N, --nproc_per_node N   ranks per machine [1]
  --backend shm|mpi|nccl          shm: shared memory, one machine [default]; nccl: CUDA tensors,
                                  one machine; mpi: started through mpirun (any number of machines)
  --nnodes M                      machines [1]; M > 1 needs --backend mpi and --hostfile
  --hostfile FILE                 mpi: the machines (mpirun's hostfile), M × N ranks in all
  --node_rank R                   0 (vlmoe-run starts every machine from one command through
                                  mpirun; torchrun's one-launch-per-machine needs a TCP rendezvous
                                  this launcher does not have)
  --master_addr A, --master_port P  exported as MASTER_ADDR / MASTER_PORT [127.0.0.1, random]
  --timeout-ms MS                 collective timeout [VLMOE_COMM_TIMEOUT_MS or 120000]
  --dry-run                       print what would be started, start nothing
  -h, --help                      this text; --version: the version`;

const OPTIONS = {
  nproc: { type: 'string' }, nproc_per_node: { type: 'string' }, 'nproc-per-node': { type: 'string' },
  backend: { type: 'string' }, nnodes: { type: 'string' }, node_rank: { type: 'string' }, hostfile: { type: 'string' },
  master_addr: { type: 'string' }, master_port: { type: 'string' }, 'timeout-ms': { type: 'string' },
  'dry-run': { type: 'boolean' }, help: { type: 'boolean', short: 'h' }, version: { type: 'boolean' },
} as const;

/** A mistake on the command line (status 2); `help` marks the bare usage asked for with --help. */
class UsageError extends Error {
  constructor(message: string, readonly help = false) {
    super(message);
  }
}

function int(v: string | undefined, flag: string, min: number, max: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === '' || !Number.isInteger(n) || n < min || n > max) throw new UsageError(`vlmoe-run: --${flag} must be an integer in [${min}, ${max}], got '${v}'\n\n${USAGE}`);
  return n;
}

export function parseArgs(argv: string[]): Args {
  // the launcher's options end at the script: everything after it belongs to the script
  const { tokens } = parseNodeArgs({ args: argv, options: OPTIONS, strict: false, allowPositionals: true, tokens: true });
  const first = tokens.find((t) => t.kind === 'positional' || t.kind === 'option-terminator');
  const own = first ? argv.slice(0, first.index) : argv;
  const scriptAt = first ? (first.kind === 'option-terminator' ? first.index + 1 : first.index) : argv.length;
  if (own.includes('--help') || own.includes('-h')) throw new UsageError(USAGE, true);
  if (own.includes('--version')) {
    const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
    throw new UsageError(`vlmoe-run ${version}`, true);
  }
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseNodeArgs({ args: own, options: OPTIONS, strict: true, allowPositionals: false }).values;
  } catch (e) {
    const m = /Unknown option '([^']+)'/.exec((e as Error).message);
    throw new UsageError(`vlmoe-run: ${m ? `unknown option ${m[1]}` : (e as Error).message}\n\n${USAGE}`);
  }
  const nprocFlags = (['nproc', 'nproc_per_node', 'nproc-per-node'] as const).filter((f) => values[f] !== undefined);
  if (nprocFlags.length > 1) throw new UsageError(`vlmoe-run: --${nprocFlags[0]} and --${nprocFlags[1]} both given (they are one option)`);
  const nproc = int(values[nprocFlags[0] ?? 'nproc'] as string | undefined, nprocFlags[0] ?? 'nproc', 1, 64) ?? 1;
  const backend = (values.backend as string | undefined) ?? 'shm';
  if (backend !== 'shm' && backend !== 'mpi' && backend !== 'nccl') throw new UsageError(`vlmoe-run: --backend must be shm, mpi or nccl, got '${backend}'`);
  const nnodes = int(values.nnodes as string | undefined, 'nnodes', 1, 4096) ?? 1;
  const nodeRank = int(values.node_rank as string | undefined, 'node_rank', 0, 4095) ?? 0;
  if (nodeRank !== 0) {
    throw new UsageError(`vlmoe-run: --node_rank ${nodeRank}: vlmoe-run starts all machines from one command (--backend mpi --hostfile FILE on the first machine); it has no per-machine rendezvous`);
  }
  const hostfile = (values.hostfile as string | undefined) ?? null;
  if (nnodes > 1 && (backend !== 'mpi' || !hostfile)) {
    throw new UsageError(`vlmoe-run: --nnodes ${nnodes} needs --backend mpi and --hostfile FILE (shm and nccl here reach the ranks of one machine)`);
  }
  if (hostfile && backend !== 'mpi') throw new UsageError(`vlmoe-run: --hostfile is for --backend mpi`);
  if (hostfile && !existsSync(hostfile)) throw new UsageError(`vlmoe-run: hostfile '${hostfile}' does not exist`);
  const masterPort = int(values.master_port as string | undefined, 'master_port', 1, 65535) ?? null;
  let timeoutMs: number | null = null;
  if (values['timeout-ms'] !== undefined) {
    timeoutMs = Number(values['timeout-ms']);
    if (!(timeoutMs > 0)) throw new UsageError(`vlmoe-run: --timeout-ms must be a positive number, got '${String(values['timeout-ms'])}'`);
  }
  if (scriptAt >= argv.length) throw new UsageError(`vlmoe-run: no script given\n\n${USAGE}`);
  const script = argv[scriptAt]!;
  if (!existsSync(script)) throw new UsageError(`vlmoe-run: script '${script}' does not exist`);
  return {
    nproc, backend, nnodes, hostfile, masterAddr: (values.master_addr as string | undefined) ?? '127.0.0.1', masterPort, timeoutMs,
    dryRun: values['dry-run'] === true, script, rest: argv.slice(scriptAt + 1),
  };
}

/** The mpirun command line of `--backend mpi` (every machine of the hostfile, nproc ranks on each). */
export function mpirunCommand(a: Args, timeoutMs: number): string[] {
  const cmd = ['mpirun', '-np', String(a.nproc * a.nnodes)];
  if (a.hostfile) cmd.push('--hostfile', a.hostfile, '--map-by', `ppr:${a.nproc}:node`);
  cmd.push('-x', 'VLMOE_BACKEND=mpi', '-x', `VLMOE_COMM_TIMEOUT_MS=${timeoutMs}`, '-x', `MASTER_ADDR=${a.masterAddr}`);
  if (a.masterPort !== null) cmd.push('-x', `MASTER_PORT=${a.masterPort}`);
  cmd.push(process.execPath, a.script, ...a.rest);
  return cmd;
}

function pipe(stream: NodeJS.ReadableStream, prefix: string, out: NodeJS.WritableStream): void {
  createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => out.write(`${prefix}${line}\n`));
}

export async function run(a: Args): Promise<number> {
  const port = a.masterPort ?? 20000 + Math.floor(Math.random() * 40000);
  const shmName = `/vlmoe-${process.pid}-${randomBytes(6).toString('hex')}`;
  const timeout = a.timeoutMs ?? Number(process.env.VLMOE_COMM_TIMEOUT_MS ?? 120_000);
  if (a.backend === 'mpi') {
    // mpirun starts the ranks (on every machine of the hostfile) and forwards their output
    const cmd = mpirunCommand(a, timeout);
    if (a.dryRun) return void console.log(cmd.map((x) => (/^[\w@%+=:,./-]+$/.test(x) ? x : `'${x.replace(/'/g, `'\\''`)}'`)).join(' ')), 0;
    const child = spawn(cmd[0]!, cmd.slice(1), { stdio: 'inherit', env: { ...process.env, VLMOE_BACKEND: 'mpi' } });
    return new Promise<number>((resolve) => {
      child.on('error', (e) => {
        process.stderr.write(`vlmoe-run: --backend mpi could not start mpirun: ${e.message} (install OpenMPI: apt-get install openmpi-bin)\n`);
        resolve(127);
      });
      child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 + 15 : 1)));
    });
  }
  const rankEnv = (rank: number) => ({
    RANK: String(rank), LOCAL_RANK: String(rank), WORLD_SIZE: String(a.nproc), LOCAL_WORLD_SIZE: String(a.nproc),
    MASTER_ADDR: a.masterAddr, MASTER_PORT: String(port), VLMOE_BACKEND: a.backend, VLMOE_SHM_NAME: shmName, VLMOE_COMM_TIMEOUT_MS: String(timeout),
  });
  if (a.dryRun) {
    for (let rank = 0; rank < a.nproc; rank++) console.log(`${Object.entries(rankEnv(rank)).map(([k, v]) => `${k}=${v}`).join(' ')} ${process.execPath} ${[a.script, ...a.rest].join(' ')}`);
    return 0;
  }
  const children: ChildProcess[] = [];
  let firstFailure = 0;
  let killTimer: NodeJS.Timeout | null = null;
  const exits = Array.from({ length: a.nproc }, (_, rank) => new Promise<number>((resolve) => {
    const env = { ...process.env, ...rankEnv(rank) };
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
    const help = e instanceof UsageError && e.help;
    (help ? console.log : console.error)((e as Error).message);
    process.exit(help ? 0 : e instanceof UsageError ? 2 : 1);
  }
  run(args).then((code) => process.exit(code));
}

const isMain = !!process.argv[1] && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href;
if (isMain) main(process.argv.slice(2));

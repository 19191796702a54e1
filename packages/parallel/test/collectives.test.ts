import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { mpiAvailable } from '../src/index.js';

const launcher = fileURLToPath(new URL('../dist/launcher.js', import.meta.url));
const worker = (name: string) => fileURLToPath(new URL(`./workers/${name}`, import.meta.url));

function launch(nproc: number, script: string, env: Record<string, string> = {}, extra: string[] = []) {
  const r = spawnSync(process.execPath, [launcher, '--nproc', String(nproc), ...extra, worker(script)], {
    encoding: 'utf8', env: { ...process.env, VLMOE_SHM_SLOT_BYTES: String(64 << 10), ...env }, timeout: 170_000,
  });
  return { status: r.status, out: `${r.stdout}\n${r.stderr}`, pid: r.pid };
}

// the launcher names its job's segments (the world's and every subgroup's) after its pid
const shmSegments = (launcherPid: number) => readdirSync('/dev/shm').filter((f) => f.startsWith(`vlmoe-${launcherPid}-`));

describe('shm process group', () => {
  for (const n of [1, 2, 4]) {
    test(`every collective on ${n} rank(s), world and subgroups, matches the local reference`, () => {
      const r = launch(n, 'collectives.mjs');
      expect(r.out.match(/collectives ok/g)?.length, r.out).toBe(n);
      expect(r.status, r.out).toBe(0);
      if (n > 1) expect(r.out).toMatch(/^\[rank 1\] collectives ok$/m);
      expect(shmSegments(r.pid!), 'segments are unlinked once every rank attached').toEqual([]);
    });
  }

  test('the staged all-to-all (no cross-memory attach) gives the same results', () => {
    const r = launch(3, 'collectives.mjs', { VLMOE_SHM_NO_CMA: '1' });
    expect(r.out.match(/collectives ok/g)?.length, r.out).toBe(3);
    expect(r.status, r.out).toBe(0);
  });

  // every rank's transfer stats, by rank
  const rankStats = (out: string) => {
    const lines = out.split('\n').map((l) => l.replace(/^\[rank \d+\] /, '')).filter((l) => l.startsWith('{"rank"'));
    const by: Record<number, { mappedBytes: number; cmaBytes: number; stagedBytes: number; localBytes: number; mappedNowBytes: number }> = {};
    for (const l of lines) {
      const { rank, stats } = JSON.parse(l);
      by[rank] = stats;
    }
    return by;
  };
  type Stat = 'mappedBytes' | 'cmaBytes' | 'stagedBytes' | 'localBytes';
  /** A stat summed over the ranks. */
  const total = (out: string, ...keys: Stat[]) => Object.values(rankStats(out)).reduce((a, x) => a + keys.reduce((b, k) => b + x[k], 0), 0);

  test('all-to-all inputs in shareable blocks are read through mappings of the senders\' blocks (views, reuse, replaced blocks)', () => {
    for (const n of [2, 3]) {
      const r = launch(n, 'alltoall_paths.mjs');
      expect(r.out.match(/paths ok/g)?.length, r.out).toBe(n);
      expect(r.status, r.out).toBe(0);
      expect(total(r.out, 'mappedBytes'), r.out).toBeGreaterThan(0);
      expect(total(r.out, 'cmaBytes', 'stagedBytes'), 'every block the test sends is shareable').toBe(0);
      expect(total(r.out, 'localBytes')).toBeGreaterThan(0);
    }
  });

  test('shareable blocks take at most half the descriptor limit; past it blocks are private and move by cross-memory attach', () => {
    // 96 descriptors (Node needs a few dozen to load the modules): a budget of 48 blocks, fewer than the worker keeps alive at once (2 × 36)
    const r = spawnSync('bash', ['-c', `ulimit -n 96 && exec "${process.execPath}" "${launcher}" --nproc 2 "${worker('alltoall_paths.mjs')}"`], {
      encoding: 'utf8', env: { ...process.env, VLMOE_SHM_SLOT_BYTES: String(64 << 10), KEEP: '36' }, timeout: 170_000,
    });
    const out = `${r.stdout}\n${r.stderr}`;
    expect(out.match(/paths ok/g)?.length, out).toBe(2);
    expect(r.status, out).toBe(0);
    expect(total(out, 'cmaBytes'), out).toBeGreaterThan(0);
    expect(total(out, 'mappedBytes'), out).toBeGreaterThan(0);
  });

  test('a mapping cache smaller than the blocks falls back to cross-memory attach and evicts; sharing off reads everything with it', () => {
    const small = launch(3, 'alltoall_paths.mjs', { VLMOE_SHM_MAP_CACHE_MB: '1' });
    expect(small.status, small.out).toBe(0);
    expect(total(small.out, 'cmaBytes'), small.out).toBeGreaterThan(0); // blocks over 1 MiB
    expect(total(small.out, 'mappedBytes'), small.out).toBeGreaterThan(0); // the smaller ones, evicted as needed
    for (const x of Object.values(rankStats(small.out))) expect(x.mappedNowBytes).toBeLessThanOrEqual(1 << 20);
    const off = launch(2, 'alltoall_paths.mjs', { VLMOE_SHM_SHARE: '0' });
    expect(off.status, off.out).toBe(0);
    expect(total(off.out, 'mappedBytes')).toBe(0);
    expect(total(off.out, 'cmaBytes')).toBeGreaterThan(0);
    const staged = launch(2, 'alltoall_paths.mjs', { VLMOE_SHM_NO_CMA: '1' });
    expect(staged.status, staged.out).toBe(0);
    expect(total(staged.out, 'stagedBytes')).toBeGreaterThan(0);
  });

  test('a rank that dies makes every other rank fail within the timeout, naming it; the launcher exits non-zero', () => {
    const r = launch(3, 'die.mjs', { VICTIM: '1' }, ['--timeout-ms', '20000']);
    expect(r.status, r.out).not.toBe(0);
    const failures = r.out.match(/failed after (\d+) ms: .*rank 1 \(pid \d+\) has exited/g) ?? [];
    expect(failures.length, r.out).toBe(2);
    for (const f of failures) expect(Number(/after (\d+) ms/.exec(f)![1])).toBeLessThan(20_000);
    expect(r.out).toMatch(/vlmoe-run: rank 1 exited with status 7/);
  });

  test('single-process groups started side by side with the same name do not collide, nor touch another job\'s segment', async () => {
    // as `vlmoe bench` lanes: every one a world of 1 on the default MASTER_ADDR / MASTER_PORT,
    // while another job's segment of that name exists (a group of one maps private memory)
    const { spawn } = await import('node:child_process');
    const { writeFileSync, readFileSync, rmSync } = await import('node:fs');
    writeFileSync('/dev/shm/vlmoe-test-same-name', 'another job');
    const script = `import { ShmProcessGroup } from ${JSON.stringify(fileURLToPath(new URL('../dist/index.js', import.meta.url)))};
      import * as T from '@vlmoe/tensor';
      const pg = new ShmProcessGroup({ name: '/vlmoe-test-same-name', rank: 0, size: 1 });
      const t = T.tensor([1, 2]); pg.allReduce(t, 'sum'); pg.barrier(); pg.destroy();
      console.log('ok', Array.from(t.dataSync()).join(','));`;
    const runs = Array.from({ length: 6 }, () => new Promise<{ code: number | null; out: string }>((resolve) => {
      const p = spawn(process.execPath, ['--input-type=module', '-e', script], { cwd: fileURLToPath(new URL('..', import.meta.url)) });
      let out = '';
      p.stdout.on('data', (d) => (out += d));
      p.stderr.on('data', (d) => (out += d));
      p.on('close', (code) => resolve({ code, out }));
    }));
    for (const r of await Promise.all(runs)) {
      expect(r.code, r.out).toBe(0);
      expect(r.out).toContain('ok 1,2');
    }
    expect(readFileSync('/dev/shm/vlmoe-test-same-name', 'utf8')).toBe('another job');
    rmSync('/dev/shm/vlmoe-test-same-name');
  });

  test('the launcher rejects bad arguments with its usage', () => {
    const r = spawnSync(process.execPath, [launcher, '--nproc', '0', 'x.js'], { encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--nproc must be an integer in \[1, 64\]/);
    const r2 = spawnSync(process.execPath, [launcher, '--nproc', '2'], { encoding: 'utf8' });
    expect(r2.stderr).toMatch(/no script given/);
    for (const help of [['--help'], ['-h'], ['--nproc', '2', '--help']]) {
      const h = spawnSync(process.execPath, [launcher, ...help], { encoding: 'utf8' });
      expect(h.status, help.join(' ')).toBe(0);
      expect(h.stdout).toMatch(/^usage: vlmoe-run \[options\] script\.js/);
      expect(h.stdout).toMatch(/--nproc_per_node/);
    }
    expect(spawnSync(process.execPath, [launcher, '--version'], { encoding: 'utf8' }).stdout).toMatch(/^vlmoe-run \d+\.\d+\.\d+/);
  });

  test("torchrun's options; a missing script or an unknown option is one line and status 2, before any rank starts", () => {
    const run = (...a: string[]) => spawnSync(process.execPath, [launcher, ...a], { encoding: 'utf8' });
    const script = worker('alltoall_paths.mjs');
    const dry = run('--nproc_per_node', '3', '--master_addr', '10.0.0.7', '--master_port', '29501', '--dry-run', script, '--nproc', '9');
    expect(dry.status, dry.stderr).toBe(0);
    const lines = dry.stdout.trim().split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[2]).toMatch(/^RANK=2 LOCAL_RANK=2 WORLD_SIZE=3 LOCAL_WORLD_SIZE=3 MASTER_ADDR=10\.0\.0\.7 MASTER_PORT=29501 VLMOE_BACKEND=shm /);
    expect(lines[2]).toMatch(/alltoall_paths\.mjs --nproc 9$/); // the script's own arguments are left alone
    const mpi = run('--backend', 'mpi', '--nproc_per_node', '2', '--dry-run', script);
    expect(mpi.stdout).toMatch(/^mpirun -np 2 -x VLMOE_BACKEND=mpi .*alltoall_paths\.mjs$/m);
    const hosts = join(mkdtempSync(join(tmpdir(), 'vlmoe-hosts-')), 'hosts');
    writeFileSync(hosts, 'node-a slots=4\nnode-b slots=4\n');
    const multi = run('--backend', 'mpi', '--nnodes', '2', '--nproc_per_node', '4', '--hostfile', hosts, '--dry-run', script);
    expect(multi.stdout).toMatch(new RegExp(`^mpirun -np 8 --hostfile ${hosts} --map-by ppr:4:node -x VLMOE_BACKEND=mpi `));
    const fails = (args: string[], re: RegExp) => {
      const r = run(...args);
      expect(r.status, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(re);
      expect(r.stdout).toBe('');
    };
    fails(['--nproc', '2', 'no-such-script.js'], /^vlmoe-run: script 'no-such-script\.js' does not exist\n$/);
    fails(['--nprocs', '2', script], /^vlmoe-run: unknown option --nprocs\n/);
    fails(['--nnodes', '2', script], /--nnodes 2 needs --backend mpi and --hostfile/);
    fails(['--node_rank', '1', script], /--node_rank 1: vlmoe-run starts all machines from one command/);
    fails(['--backend', 'gloo', script], /--backend must be shm, mpi or nccl, got 'gloo'/);
    fails(['--nproc', '2', '--nproc_per_node', '2', script], /both given/);
  });
});

// mpirun as root needs its consent variables; 4 ranks on 2 cores need oversubscription
const mpiEnv = { OMPI_ALLOW_RUN_AS_ROOT: '1', OMPI_ALLOW_RUN_AS_ROOT_CONFIRM: '1', OMPI_MCA_rmaps_base_oversubscribe: '1', VLMOE_BACKEND: 'mpi' };
const hasMpirun = spawnSync('mpirun', ['--version'], { encoding: 'utf8' }).status === 0;
const mpiReady = hasMpirun && mpiAvailable();

export function mpirun(nproc: number, script: string, env: Record<string, string> = {}) {
  const r = spawnSync('mpirun', ['-np', String(nproc), '-x', 'VLMOE_BACKEND', ...Object.keys(env).flatMap((k) => ['-x', k]), process.execPath, script], {
    encoding: 'utf8', env: { ...process.env, ...mpiEnv, ...env }, timeout: 120_000, killSignal: 'SIGKILL',
  });
  return { status: r.status, out: `${r.stdout}\n${r.stderr}` };
}

describe.skipIf(!mpiReady)('mpi process group (mpirun)', () => {
  test('vlmoe-run --backend mpi starts the job through mpirun', () => {
    const r = spawnSync(process.execPath, [launcher, '--backend', 'mpi', '--nproc_per_node', '2', worker('collectives.mjs')], { encoding: 'utf8', env: { ...process.env, ...mpiEnv }, timeout: 120_000 });
    expect(r.stdout.match(/collectives ok/g)?.length, r.stdout + r.stderr).toBe(2);
    expect(r.status).toBe(0);
  });

  for (const n of [1, 2, 4]) {
    test(`every collective on ${n} rank(s), world and subgroups, matches the local reference`, () => {
      const r = mpirun(n, worker('collectives.mjs'));
      expect(r.out.match(/collectives ok/g)?.length, r.out).toBe(n);
      expect(r.status, r.out).toBe(0);
    });
  }

  test('a rank that exits with an error status aborts the whole job at once', () => {
    const t0 = Date.now();
    const r = mpirun(3, worker('die.mjs'), { VICTIM: '1', VLMOE_COMM_TIMEOUT_MS: '20000' });
    expect(r.status, r.out).not.toBe(0);
    expect(r.status, 'mpirun itself must end (not be killed by the test timeout)').not.toBe(null);
    expect(r.out).toMatch(/rank 1 exited with status 7/);
    expect(Date.now() - t0).toBeLessThan(15_000);
  });

  test('a rank killed mid-run ends the whole job with a non-zero status', () => {
    const t0 = Date.now();
    const r = mpirun(3, worker('die.mjs'), { VICTIM: '1', DIE_BY: 'kill', VLMOE_COMM_TIMEOUT_MS: '20000' });
    expect(r.status, r.out).not.toBe(0);
    expect(r.status, 'mpirun itself must end (not be killed by the test timeout)').not.toBe(null);
    expect(r.out).not.toMatch(/no error: BAD/);
    expect(Date.now() - t0).toBeLessThan(60_000);
  });
});

test.runIf(!mpiReady)('mpi process group: skipped because this machine has no MPI build or mpirun (install libopenmpi-dev openmpi-bin, rebuild)', () => {
  expect(mpiReady).toBe(false);
});

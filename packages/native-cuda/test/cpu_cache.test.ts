import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// The CPU block cache's bound is read once per process (VLMOE_CPU_CACHE_MB), so these run in a
// child process with an 8 MiB cache. A class counts as stale after 65536 cacheable allocations
// and frees without use (storage.cpp kStaleOps); the loops below run well past that.
const here = dirname(fileURLToPath(import.meta.url));
const binary = ['Release', 'Debug'].map((b) => join(here, '..', 'build', b, 'vlmoe_native.node')).find((p) => existsSync(p));

const CHILD = `
const native = require(process.env.ADDON);
const MiB = 1 << 20;
const cached = () => native.memory().cpu.cached / MiB;
const cycle = (bytes) => { const h = native.alloc(-1, bytes); const during = cached(); native.free(h); return during; };
const out = {};
// 1. fill the cache with eight 1 MiB blocks (class A)
const a = Array.from({ length: 8 }, () => native.alloc(-1, MiB));
a.forEach((h) => native.free(h));
out.filled = cached();
// 2. A and a 2 MiB class B both in use: B does not fit and A is not stale, so A stays cached
for (let i = 0; i < 40000; i++) { cycle(MiB); cycle(2 * MiB); }
out.hotA = cycle(MiB);
out.hotB = cycle(2 * MiB);
out.afterHot = cached();
// 3. only B in use: A goes stale, B evicts two A blocks and is then reused
for (let i = 0; i < 40000; i++) cycle(2 * MiB);
out.staleB = cycle(2 * MiB);
out.afterStale = cached();
// 4. emptyCache returns everything
native.emptyCache();
out.emptied = cached();
process.stdout.write(JSON.stringify(out));
`;

describe('CPU block cache (storage.cpp)', () => {
  it.skipIf(!binary)('keeps size classes in use and evicts stale ones when a freed block does not fit', () => {
    const r = spawnSync(process.execPath, ['-e', CHILD], {
      encoding: 'utf8',
      env: { ...process.env, ADDON: binary, VLMOE_CPU_CACHE_MB: '8', VLMOE_POISON: '0' },
    });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    // cached MiB at each point: full of A; in-use classes: A hits the cache (8 → 7 while held), B misses
    // (stays 8) and is freed, not cached; after A went stale: B's block comes from the cache (8 → 6 while
    // held) and returns to it
    expect(JSON.parse(r.stdout)).toEqual({ filled: 8, hotA: 7, hotB: 8, afterHot: 8, staleB: 6, afterStale: 8, emptied: 0 });
  });
  it.skipIf(!binary)('without VLMOE_CPU_CACHE_MB the bound follows the peak of live bytes past 2 GiB', () => {
    // 3 GiB of 64 MiB blocks, never touched (no pages): all of it cached after the frees
    const child = `
const native = require(process.env.ADDON);
const MiB = 1 << 20;
const hs = Array.from({ length: 48 }, () => native.alloc(-1, 64 * MiB));
hs.forEach((h) => native.free(h));
const cached = native.memory().cpu.cached / MiB;
native.emptyCache();
process.stdout.write(JSON.stringify({ cached, peak: native.memory().cpu.peak / MiB }));
`;
    const env: NodeJS.ProcessEnv = { ...process.env, ADDON: binary, VLMOE_POISON: '0' };
    delete env.VLMOE_CPU_CACHE_MB;
    const r = spawnSync(process.execPath, ['-e', child], { encoding: 'utf8', env });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ cached: 3072, peak: 3072 });
  });
});

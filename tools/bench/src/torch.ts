/**
 * The PyTorch CPU peer: runs peers/torch_ops.py with Debian's python3-torch
 * (`apt-get install python3-torch`; it installs for /usr/bin/python3). Returns null with a
 * printed note when PyTorch is not installed, so the benchmark still runs.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function python(): string | null {
  for (const p of [process.env.VLMOE_PYTHON, '/usr/bin/python3', 'python3']) {
    if (!p) continue;
    const r = spawnSync(p, ['-c', 'import torch'], { encoding: 'utf8' });
    if (r.status === 0) return p;
  }
  return null;
}

/** Runs a peer script (peers/<script>) with one JSON argument; returns its last JSON line. */
export function runTorchScript(script: string, args: unknown): Record<string, unknown> | null {
  const py = python();
  if (!py) {
    console.log('note: PyTorch is not installed, so the PyTorch column stays empty. Install it with: sudo apt-get install -y python3-torch');
    return null;
  }
  const path = join(dirname(fileURLToPath(import.meta.url)), '..', 'peers', script);
  const r = spawnSync(py, [path, JSON.stringify(args)], { encoding: 'utf8', maxBuffer: 1 << 24 });
  if (r.status !== 0) throw new Error(`PyTorch peer failed (${py} ${path}):\n${r.stderr}`);
  const lines = r.stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]!) as Record<string, unknown>;
}

export function runTorch(what: string, args: Record<string, unknown>): Record<string, number> | null {
  const py = python();
  if (!py) {
    console.log('note: PyTorch is not installed, so the PyTorch column stays empty. Install it with: sudo apt-get install -y python3-torch');
    return null;
  }
  const script = join(dirname(fileURLToPath(import.meta.url)), '..', 'peers', 'torch_ops.py');
  if (!existsSync(script)) throw new Error(`missing peer script ${script}`);
  const r = spawnSync(py, [script, what, JSON.stringify(args)], { encoding: 'utf8', maxBuffer: 1 << 24 });
  if (r.status !== 0) throw new Error(`PyTorch peer failed (${py} ${script} ${what}):\n${r.stderr}`);
  const lines = r.stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]!) as Record<string, number>;
}

/**
 * `vlmoe export` / `vlmoe import` as a user runs them: a pretraining run's weights go out as a
 * unilm VLMo .pth and as a DeepSpeed-MoE folder, come back as run folders holding the same
 * weights bit for bit, and a fine-tuning run starts from an imported folder. PyTorch reads the
 * exports (when python3 with torch is installed).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadCheckpointWeights } from '@vlmoe/parallel';
import { afterAll, describe, expect, test } from 'vitest';

const cli = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'vlmoe-interop-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const env = { ...process.env, VLMOE_PROGRESS: '0' };
const vlmoe = (...args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', env, timeout: 300_000 });
const python = process.env.VLMOE_PYTHON ?? '/usr/bin/python3';
const hasTorch = spawnSync(python, ['-c', 'import torch'], { encoding: 'utf8' }).status === 0;

function weightsOf(run: string): Record<string, Float32Array> {
  const { weights } = loadCheckpointWeights(join(run, 'checkpoints'));
  const out: Record<string, Float32Array> = {};
  for (const [k, t] of Object.entries(weights)) {
    out[k] = t.dataSync() as Float32Array;
    t.dispose();
  }
  return out;
}

describe('vlmoe export / import', () => {
  const runs = join(dir, 'runs');
  const data = `shapes:${join(dir, 'shapes')}`;
  const pre = join(runs, 'pre');

  test('a VL-MoE run → unilm .pth and DeepSpeed folder → run folders with the same weights; fine-tuning starts from one', () => {
    writeFileSync(join(dir, 'pre.json'), JSON.stringify({ name: 'pre', data, runs, steps: 3, batch: 8, experts: 4, checkpointEvery: 3, evalSplit: 'none' }));
    const p = vlmoe('pretrain', '--config', join(dir, 'pre.json'));
    expect(p.status, p.stdout + p.stderr).toBe(0);
    const ours = weightsOf(pre);

    const pth = join(dir, 'vlmo.pth'), dsDir = join(dir, 'ds');
    for (const [format, out] of [['vlmo', pth], ['deepspeed', dsDir]] as const) {
      const e = vlmoe('export', '--run', pre, '--format', format, '--out', out);
      expect(e.status, e.stderr).toBe(0);
      expect(e.stdout).toMatch(/tensors/);
    }
    const tok = join(dir, 'shapes', 'tokenizer.json');
    const i1 = vlmoe('import', '--format', 'vlmo', '--from', pth, '--out', join(dir, 'imp-vlmo'), '--experts', '4', '--tokenizer', tok);
    expect(i1.status, i1.stderr).toBe(0);
    expect(i1.stdout).toMatch(/fine-tune with "init"/);
    const i2 = vlmoe('import', '--format', 'deepspeed', '--from', dsDir, '--out', join(dir, 'imp-ds'), '--experts', '4', '--tokenizer', tok);
    expect(i2.status, i2.stderr).toBe(0);
    for (const imported of [weightsOf(join(dir, 'imp-vlmo')), weightsOf(join(dir, 'imp-ds'))]) {
      // every weight of the backbone and the pretraining heads comes back exactly
      expect(Object.keys(imported).sort()).toEqual(Object.keys(ours).sort());
      for (const [k, v] of Object.entries(ours)) {
        if (k === 'backbone.typeEmbed.weight') {
          // VLMo's checkpoints hold 2 token types (text, image); the third (NLVR's second image) comes back as the image row, as VLMo's NLVR2 model sets it
          expect(Array.from(imported[k]!.subarray(0, 128))).toEqual(Array.from(v.subarray(0, 128)));
          expect(Array.from(imported[k]!.subarray(128))).toEqual(Array.from(v.subarray(64, 128)));
        } else expect(Buffer.from(imported[k]!.buffer).equals(Buffer.from(v.buffer)), k).toBe(true);
      }
    }

    writeFileSync(join(dir, 'ft.json'), JSON.stringify({ name: 'ft', task: 'vqa', init: join(dir, 'imp-ds'), data, runs, steps: 2, batch: 8, evalSplit: 'none' }));
    const ft = vlmoe('finetune', '--config', join(dir, 'ft.json'));
    expect(ft.status, ft.stdout + ft.stderr).toBe(0);
    expect(ft.stdout).toMatch(/from .*imp-ds.*checkpoints \(imported; new: head\)/);
  });

  test.runIf(hasTorch)('torch.load reads the exports: the same values under unilm / DeepSpeed names', () => {
    const script = `
import sys, torch
sd = torch.load(sys.argv[1])
m = torch.load(sys.argv[2] + '/global_step3/mp_rank_00_model_states.pt')['module']
e = torch.load(sys.argv[2] + '/global_step3/layer_0_expert_1_mp_rank_00_model_states.pt')
k = [k for k in e if k.endswith('deepspeed_experts.1.fc1.weight')][0]
w = sd[k]
assert torch.equal(w, e[k]), 'expert 1 differs between the .pth and the DeepSpeed expert file'
assert torch.equal(sd['transformer.patch_embed.proj.weight'], m['transformer.patch_embed.proj.weight'])
print(tuple(w.shape), float(sd['text_embeddings.word_embeddings.weight'][3, 5]))`;
    const r = spawnSync(python, ['-c', script, join(dir, 'vlmo.pth'), join(dir, 'ds')], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const ours = weightsOf(pre);
    const [shape, value] = r.stdout.trim().split(') ');
    expect(shape).toBe('(256, 64'); // fc1 of expert 1: [hidden, dim] as nn.Linear stores it
    expect(Number(value)).toBe(ours['backbone.textEmbed.weight']![3 * 64 + 5]); // tiny's width is 64
  });

  test('bad input: one line naming what is wrong', () => {
    const bad = (args: string[], status: number, re: RegExp) => {
      const r = vlmoe(...args);
      expect(r.status, args.join(' ')).toBe(status);
      expect(r.stderr).toMatch(re);
    };
    bad(['import', '--from', 'x.pth', '--out', 'y'], 2, /--format is required/);
    bad(['import', '--format', 'onnx', '--from', 'x', '--out', 'y'], 2, /--format must be vlmo or deepspeed, got 'onnx'/);
    bad(['import', '--format', 'vlmo', '--from', join(dir, 'vlmo.pth'), '--out', join(dir, 'imp-bad'), '--experts', '4', '--vocab-size', '1000'], 1, /'text_embeddings\.word_embeddings\.weight' has shape \[\d+, 64\], expected \[1000, 64\]/);
    bad(['import', '--format', 'vlmo', '--from', join(dir, 'vlmo.pth'), '--out', join(dir, 'imp-vlmo'), '--experts', '4', '--vocab-size', '1000'], 1, /already holds a run/);
    bad(['import', '--format', 'deepspeed', '--from', join(dir, 'vlmo.pth'), '--out', join(dir, 'imp-x'), '--vocab-size', '9'], 1, /is not a folder/);
    bad(['export', '--run', join(dir, 'nope'), '--format', 'vlmo', '--out', 'x.pth'], 1, /nope: no config\.json \(not a run folder\)/);
  });
});

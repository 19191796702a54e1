// Prints the GPU check's table (ours vs PyTorch on the same GPU, with the issue's bars) from
// the two JSON files of bench.mjs and torch_peer.py; writes the merged result as JSON.
// Usage: node tools/gpu/report.mjs ours.json torch.json merged.json
import { readFileSync, writeFileSync } from 'node:fs';

const [oursPath, torchPath, outPath] = process.argv.slice(2);
const ours = JSON.parse(readFileSync(oursPath, 'utf8'));
const torch = torchPath ? JSON.parse(readFileSync(torchPath, 'utf8')) : null;
const CEILING_TFLOPS = 790; // bf16, measured on these machines (device/KINDS.md)
const rows = [];
const f = (v, d = 2) => (v === null || v === undefined || Number.isNaN(v) ? '—' : Number(v).toFixed(d));
const bar = (ok) => (ok === null ? 'n/a' : ok ? 'ok' : 'MISSED');
const add = (what, unit, mine, peer, peerName, ratio, barText, ok) => rows.push({ what, unit, ours: mine, peer, peerName, ratio, bar: `${barText}: ${bar(ok)}` });

for (const [name, g] of Object.entries(ours.gemm ?? {})) {
  const t = torch?.gemm?.[name];
  const r = t ? g.tflops / t.fp32_tflops : null;
  add(`GEMM ${g.M}×${g.K}×${g.N} float32`, 'TFLOP/s', g.tflops, t?.fp32_tflops, 'torch.matmul fp32', r, '≥ 0.9× torch', r === null ? null : r >= 0.9);
  const rb = t && g.bf16_tflops ? g.bf16_tflops / t.bf16_tflops : null;
  add(`GEMM ${g.M}×${g.K}×${g.N} bf16 (the bar's unit)`, 'TFLOP/s', g.bf16_tflops, t?.bf16_tflops, `torch.matmul bf16; ceiling ${CEILING_TFLOPS}: ours ${f((100 * (g.bf16_tflops ?? 0)) / CEILING_TFLOPS, 0)}%`, rb, '≥ 0.9× torch', rb === null ? null : rb >= 0.9);
}
if (ours.memory) {
  const ceiling = torch?.memory?.copy_gbps ?? ours.memory.copy_gbps;
  const r = ours.memory.gelu_gbps / ceiling;
  add(`GELU over ${ours.memory.n} float32`, 'GB/s', ours.memory.gelu_gbps, torch?.memory?.gelu_gbps, 'F.gelu', torch ? ours.memory.gelu_gbps / torch.memory.gelu_gbps : null, `≥ 70% of the copy ceiling (${f(ceiling, 0)} GB/s): ${f(100 * r, 0)}%`, r >= 0.7);
  const rb = ours.memory.bias_gelu_gbps / ceiling;
  add(`bias + GELU over ${ours.memory.n} float32 (fused)`, 'GB/s', ours.memory.bias_gelu_gbps, torch?.memory?.bias_gelu_gbps, 'F.gelu(x + b)', torch ? ours.memory.bias_gelu_gbps / torch.memory.bias_gelu_gbps : null, `≥ 70% of the copy ceiling: ${f(100 * rb, 0)}%`, rb >= 0.7);
  add('copy (clone)', 'GB/s', ours.memory.copy_gbps, torch?.memory?.copy_gbps, 'x.clone()', torch ? ours.memory.copy_gbps / torch.memory.copy_gbps : null, 'the ceiling', null);
}
for (const [key, m] of Object.entries(ours.moe ?? {})) {
  const t = torch?.moe?.[key];
  const re = t ? m.seconds / t.einsum_seconds : null, ri = t ? m.seconds / t.index_seconds : null;
  add(`MoE ${key} fwd+bwd, S=${m.S} d=${m.d} h=${m.h}, fp32 — vs einsum`, 'ms', m.seconds * 1e3, t ? t.einsum_seconds * 1e3 : null, 'DeepSpeed einsum MoE', re, '≤ 0.33×', re === null ? null : re <= 0.33);
  add(`MoE ${key} — vs index-based`, 'ms', m.seconds * 1e3, t ? t.index_seconds * 1e3 : null, 'index-based MoE', ri, '≤ 1.0×', ri === null ? null : ri <= 1.0);
}
if (ours.train) {
  const r = torch?.train ? ours.train.seconds / torch.train.seconds : null;
  add('training step, 4 pre-LN blocks d256, [16×128], AdamW, fp32', 'ms', ours.train.seconds * 1e3, torch?.train ? torch.train.seconds * 1e3 : null, 'PyTorch eager', r, '≤ 1.0×', r === null ? null : r <= 1.0);
  const rh = torch?.train?.bf16_seconds && ours.train.bf16_seconds ? ours.train.bf16_seconds / torch.train.bf16_seconds : null;
  add('training step, bf16 autocast', 'ms', (ours.train.bf16_seconds ?? NaN) * 1e3, torch?.train?.bf16_seconds ? torch.train.bf16_seconds * 1e3 : null, 'PyTorch eager + autocast', rh, '≤ 1.0×', rh === null ? null : rh <= 1.0);
}

console.log(`\nGPU check: ${torch?.gpu ?? ours.device}, PyTorch ${torch?.torch_version ?? '—'}, cuBLAS ${ours.cublas?.available ? `${ours.cublas.version} (${ours.cublas.path})` : 'not loaded — our own GEMM kernel'}\n`);
console.log('| case | unit | ours | peer | peer name | ratio | bar |');
console.log('| --- | --- | ---: | ---: | --- | ---: | --- |');
for (const r of rows) console.log(`| ${r.what} | ${r.unit} | ${f(r.ours)} | ${f(r.peer)} | ${r.peerName} | ${f(r.ratio, 3)} | ${r.bar} |`);
if (outPath) writeFileSync(outPath, JSON.stringify({ ours, torch, rows }, null, 1));

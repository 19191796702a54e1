// Our side of the GPU check (tools/gpu/check.sh): times, on one device, what the issue's
// bars name — GEMM, a memory-bound op against the copy ceiling, the MoE layer forward +
// backward, the benchmark transformer's training step — and prints one JSON line.
// Usage: node tools/gpu/bench.mjs '{"device": "cuda:0", "quick": false}'
// ("quick" shrinks every size so the script can be checked on a CPU: device "cpu").
import * as T from '@vlmoe/tensor';
import { MoE } from '@vlmoe/moe';

const args = JSON.parse(process.argv[2] ?? '{}');
const dev = args.device ?? 'cuda:0';
const quick = !!args.quick;
const onGpu = dev !== 'cpu';
const sync = () => { if (onGpu) T.synchronize(dev); };

/** Seconds per call: warm-up, then the mean over `iters` calls bracketed by synchronisations. */
function timeit(fn, { warmup = 3, iters = 10 } = {}) {
  for (let i = 0; i < warmup; i++) fn();
  sync();
  const t0 = performance.now();
  for (let i = 0; i < iters; i++) fn();
  sync();
  return (performance.now() - t0) / 1000 / iters;
}

const gen = new T.Generator(0);
const randn = (shape) => T.toDevice(T.randn(shape, { generator: gen }), dev).keep();
const out = { device: dev, quick, info: T.nativeInfo(), cublas: null };
try { out.cublas = (await import('@vlmoe/native-cuda')).native.cublasInfo(); } catch { /* CPU build */ }

// 1. GEMM, float32 (full fp32: TF32 only with VLMOE_CUDA_TF32=1), 4096³ and the MoE layer's shapes
out.gemm = {};
const gemmShapes = quick ? { sq: [128, 128, 128] } : { sq: [4096, 4096, 4096], up: [16384, 1024, 4096], down: [16384, 4096, 1024] };
for (const [name, [M, K, N]] of Object.entries(gemmShapes)) {
  const a = randn([M, K]), b = randn([K, N]);
  const s = timeit(() => T.scope(() => { T.matmul(a, b); }), { iters: quick ? 2 : 20 });
  // bfloat16 operands and result, float32 accumulation (cuBLAS GemmEx)
  const ah = a.to('bfloat16').keep(), bh = b.to('bfloat16').keep();
  const sh = timeit(() => T.scope(() => { T.matmul(ah, bh); }), { iters: quick ? 2 : 20 });
  out.gemm[name] = { M, K, N, seconds: s, tflops: (2 * M * N * K) / s / 1e12, bf16_seconds: sh, bf16_tflops: (2 * M * N * K) / sh / 1e12 };
  for (const t of [a, b, ah, bh]) t.dispose();
}

// 2. memory-bound: GELU over 256M float32 elements (1 GiB in, 1 GiB out) and a copy (clone)
{
  const n = quick ? 1 << 16 : 256 * (1 << 20);
  const x = randn([n]);
  const gelu = timeit(() => T.scope(() => { T.gelu(x); }), { iters: quick ? 2 : 10 });
  // bias + GELU fused (one pass): x as [n / 1024, 1024] plus a bias of 1024
  const xb = x.reshape(-1, 1024), bias = randn([1024]);
  const biasGelu = timeit(() => T.scope(() => { T.biasGelu(xb, bias); }), { iters: quick ? 2 : 10 });
  const copy = timeit(() => T.scope(() => { T.clone(x); }), { iters: quick ? 2 : 10 });
  out.memory = { n, gelu_seconds: gelu, gelu_gbps: (8 * n) / gelu / 1e9, bias_gelu_gbps: (8 * n) / biasGelu / 1e9, copy_seconds: copy, copy_gbps: (8 * n) / copy / 1e9 };
  x.dispose();
}

// 3. the MoE layer, forward + backward (loss = Σ output + aux loss), float32
out.moe = {};
{
  const S = quick ? 256 : 16384, d = quick ? 64 : 1024, h = quick ? 128 : 4096;
  const x = randn([S, d]).requiresGrad_(true);
  for (const [E, k] of [[8, 1], [8, 2], [32, 1], [32, 2]]) {
    const moe = new MoE({ hiddenSize: d, ffnHiddenSize: h, numExperts: E, k, capacityFactor: 1, minCapacity: 4, generator: gen }).to(dev);
    const step = () => T.scope(() => {
      for (const p of moe.parameters()) p.zeroGrad();
      x.zeroGrad();
      const r = moe.forward(x);
      T.add(r.output.sum(), r.auxLoss).backward();
    });
    out.moe[`E${E}_k${k}`] = { S, d, h, seconds: timeit(step, { warmup: 2, iters: quick ? 2 : 10 }) };
    moe.dispose();
  }
  x.dispose();
}

// 4. the benchmark transformer's training step (4 pre-LN blocks d256 h4 ffn1024, [16×128], AdamW)
{
  const [blocks, D, heads, ffn, seq, batch] = [4, 256, 4, 1024, 128, 16];
  class Block extends T.nn.Module {
    constructor() {
      super();
      this.ln1 = new T.nn.LayerNorm(D);
      this.attn = new T.nn.MultiheadSelfAttention(D, heads, { qkvBias: 'all', generator: gen });
      this.ln2 = new T.nn.LayerNorm(D);
      this.mlp = new T.nn.FeedForward(D, ffn, { generator: gen });
    }
    forward(x) {
      const hdn = x.add(this.attn.forward(this.ln1.forward(x)));
      return hdn.add(this.mlp.forward(this.ln2.forward(hdn)));
    }
  }
  const model = new T.nn.Sequential(...Array.from({ length: blocks }, () => new Block())).to(dev);
  const opt = new T.optim.AdamW(model.parameters(), { lr: 1e-4, weightDecay: 0.01 });
  const x = randn([batch, seq, D]), target = randn([batch, seq, D]);
  const step = () => T.scope(() => {
    opt.zeroGrad();
    T.nn.mseLoss(model.forward(x), target).backward();
    opt.step();
  });
  out.train = { seconds: timeit(step, { warmup: 3, iters: quick ? 2 : 20 }) };
  // the same step with bfloat16 matrix products (T.autocast; float32 master weights)
  out.train.bf16_seconds = timeit(() => T.autocast('bfloat16', step), { warmup: 3, iters: quick ? 2 : 20 });
}

console.log(JSON.stringify(out));

// Run by vlmoe-run in the planner's calibration test: one VL-MoE pretraining job at the layout in
// PLAN (JSON env: preset, experts, k, batch (global), steps, engine (a DeepSpeed config's layout
// keys)); rank 0 prints one JSON line of measured bytes and counted collective bytes.
import * as T from '@vlmoe/tensor';
import { VLMoPretrainer, preset } from '@vlmoe/moe';
import { readFileSync } from 'node:fs';
import { createParallelGroups, initProcessGroup, initialize, zeroInit } from '@vlmoe/parallel';

// counts the input bytes of every collective a group is handed, by group (as the planner states them)
const tallies = {};
function counting(pg, name) {
  if (pg.size === 1) return pg;
  const tally = (tallies[name] ??= { bytes: 0, calls: 0 });
  const bytesOf = (t) => t.numel * T.dtypeSize[t.dtype];
  return new Proxy(pg, {
    get(target, prop) {
      const v = Reflect.get(target, prop);
      if (typeof v !== 'function') return v;
      if (['allReduce', 'allGatherIntoTensor', 'allGather', 'reduceScatterTensor', 'reduceScatter', 'allToAllSingle'].includes(prop)) {
        return (...x) => {
          if (prop === 'reduceScatter') for (const t of x[1]) tally.bytes += bytesOf(t);
          else tally.bytes += bytesOf(prop === 'allGatherIntoTensor' || prop === 'reduceScatterTensor' || prop === 'allToAllSingle' ? x[1] : x[0]);
          tally.calls++;
          return v.apply(target, x);
        };
      }
      return v.bind(target);
    },
  });
}

const a = JSON.parse(process.env.PLAN);
T.setNumThreads(1);
const pg = initProcessGroup();
const config = preset(a.preset, { dropPath: 0, ...(a.experts ? { experts: a.experts, k: a.k ?? 1 } : {}) });
if (config.moe) Object.assign(config.moe, { capacityFactor: 1.25, minCapacity: 4, dropPolicy: 'position', ...(a.dropTokens === false ? { dropTokens: false } : {}) });
// zeroInit (a directory): the model is built with its parameters in files there
const tBuild = performance.now();
const build = () => new VLMoPretrainer(config, {}, { generator: new T.Generator(0) });
const model = a.zeroInit ? zeroInit({ nvmePath: a.zeroInit }, build) : build();
const buildSeconds = (performance.now() - tBuild) / 1000;
model.train();
const groups = createParallelGroups(pg, { tensor: a.engine.tensor_parallel_size ?? 1, expert: a.engine.expert_parallel_size ?? 1 });
for (const g of ['dataParallel', 'expertDataParallel', 'tensorParallel', 'expertParallel', 'expertDataTensorParallel']) if (groups[g]) groups[g] = counting(groups[g], g);
const { engine } = initialize({ model, processGroup: pg, groups, config: { train_batch_size: a.batch, optimizer: { type: 'AdamW', params: { lr: 1e-4, weight_decay: 0.01 } }, ...a.engine } });
const dp = engine.groups.dataParallel, local = a.batch / dp.size;
const L = config.maxTextLen, V = config.vocabSize, S = config.imageSize;
const batch = T.scope(() => {
  const g = new T.Generator(100 + dp.rank);
  const ids = T.randint(5, V, [local, L], { generator: g, dtype: 'int64' });
  const pick = T.lt(T.uniform([local, L], 0, 1, { generator: g }), 0.15);
  const out = { image: T.randn([local, 3, S, S], { generator: g }), ids, mask: T.ones([local, L], { dtype: 'int64' }), mlmIds: T.where(pick, T.full([local, L], 3, { dtype: 'int64' }), ids), mlmLabels: T.where(pick, ids, T.full([local, L], -100, { dtype: 'int64' })) };
  for (const t of Object.values(out)) t.keep();
  return out;
});

let forwardBytes = 0, stepPeak = 0, between = 0, flops = 0;
const stepSeconds = [];
let loss = 0;
for (let i = 0; i < a.steps; i++) {
  pg.barrier();
  for (const t of Object.values(tallies)) t.bytes = t.calls = 0;
  flops = T.flopCount();
  between = T.memory().cpu.live;
  T.resetPeakMemory();
  const t0 = performance.now();
  T.scope(() => {
    const out = engine.forward({ ...batch, generator: new T.Generator(1000 + i) });
    forwardBytes = T.memory().cpu.live - between;
    loss = out.loss.item();
    engine.backward(out.loss);
    engine.step();
  });
  // the last step's (steady state: the optimiser state exists before it)
  stepPeak = T.memory().cpu.peak - between;
  flops = T.flopCount() - flops;
  stepSeconds.push((performance.now() - t0) / 1000);
  if (a.verbose && pg.rank === 0) console.error(`step ${i + 1}: ${stepSeconds.at(-1).toFixed(1)} s, loss ${loss.toFixed(4)}`);
}
// the process's resident memory: its peak (VmHWM) and now, anonymous and file-backed (the offloaded state's pages)
const status = Object.fromEntries(readFileSync('/proc/self/status', 'utf8').split('\n').filter((l) => /^(VmHWM|RssAnon|RssFile|RssShmem):/.test(l)).map((l) => [l.split(':')[0], Number(l.split(/\s+/)[1]) * 1024]));
let held = 0;
for (const p of model.parameters()) if (!p.storage.dataReleased) held += p.numel * T.dtypeSize[p.dtype];
const res = { rank: pg.rank, held, optimizer: engine.optimizerStateBytes(), partitions: engine.zero.partitionBytes(), file: T.memory().cpu.file, between, forwardBytes, stepPeak, flops, comm: tallies, tp: engine.tensorParallelReport, buildSeconds, stepSeconds, status, loss, params: model.parameters().reduce((n, p) => n + p.numel, 0) };
console.log(JSON.stringify(res));
engine.destroy();
pg.destroy();

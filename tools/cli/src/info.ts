/** `vlmoe info`: a preset's shape and its total / active parameters, without building it. */
import { UsageError } from './command_line.js';
import { parameterCount, preset, resolveVLMoConfig, type PresetName } from '@vlmoe/moe';

export const INFO_USAGE = `usage: vlmoe info [--preset tiny|small|base|large] [--experts E] [--k K] [--json]

  --preset   the model size [tiny]
  --experts  experts per MoE layer [0: the dense VLMo]
  --k        experts per token (top-k) [1], at most --experts
  --json     one JSON object instead of the table

Prints the model's shape and parameter counts: total, and active per token (every parameter
except the experts a token is not routed to). Nothing is allocated, so base and large with
many experts are instant.`;

/** A count in B / M / K. */
export const humanCount = (n: number) => (n >= 1e9 ? `${(n / 1e9).toFixed(2)}B` : n >= 1e6 ? `${(n / 1e6).toFixed(1)}M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)}K` : String(n));

export interface InfoOptions {
  preset?: string;
  /** Experts per MoE layer; 0 = dense (the default). */
  experts?: number;
  /** Top-k (default 1; at most `experts`). */
  k?: number;
  json?: boolean;
}

export function info(o: InfoOptions): string {
  const name = (o.preset ?? 'tiny') as PresetName;
  const experts = o.experts ?? 0;
  if (o.k !== undefined && experts === 0) throw new UsageError(`--k ${o.k} needs --experts ≥ 1 (a dense model routes nothing)`, INFO_USAGE, 'info');
  if (o.k !== undefined && o.k > experts) throw new UsageError(`--k ${o.k} is more than --experts ${experts} (each token picks k of the experts)`, INFO_USAGE, 'info');
  const cfg = preset(name, experts ? { experts, k: o.k } : {});
  const r = resolveVLMoConfig(cfg);
  const p = parameterCount(cfg);
  const summary = {
    preset: name, dim: r.dim, depth: r.depth, heads: r.heads, vlBlocks: r.vlBlocks, imageSize: r.imageSize, patchSize: r.patchSize,
    vocabSize: r.vocabSize, experts: r.moe?.numExperts ?? 0, k: r.moe?.k ?? 0, moeBlocks: r.moe?.blocks ?? [],
    totalParameters: p.total, activeParameters: p.active, parametersPerExpert: p.perExpert,
  };
  if (o.json) return JSON.stringify(summary);
  const rows: [string, string][] = [
    ['model', `${experts ? `VL-MoE-${name}/${experts}E (top-${r.moe!.k})` : `VLMo-${name} (dense)`}`],
    ['blocks × dim × heads', `${r.depth} × ${r.dim} × ${r.heads} (VL-FFN in the top ${r.vlBlocks})`],
    ['image / patch / vocab', `${r.imageSize} px / ${r.patchSize} / ${r.vocabSize}`],
    ...(r.moe ? [['MoE blocks', `${r.moe.blocks.join(', ')} (V and T pools of ${r.moe.numExperts} experts, ${humanCount(p.perExpert)} each)`] as [string, string]] : []),
    ['total parameters', `${humanCount(p.total)} (${p.total.toLocaleString('en-US')})`],
    ['active per token', `${humanCount(p.active)} (${p.active.toLocaleString('en-US')})`],
  ];
  const w = Math.max(...rows.map(([a]) => a.length));
  return rows.map(([a, b]) => `${a.padEnd(w)}  ${b}`).join('\n');
}

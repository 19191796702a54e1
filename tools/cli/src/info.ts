/** `vlmoe info`: a preset's shape and its total / active parameters, without building it. */
import { parameterCount, preset, resolveVLMoConfig, type PresetName } from '@vlmoe/moe';

export const INFO_USAGE = `usage: vlmoe info --preset tiny|small|base|large [--experts E] [--k K] [--json]

Prints the model's shape and parameter counts: total, and active per token (every parameter
except the experts a token is not routed to). Nothing is allocated, so base and large with
many experts are instant.`;

const human = (n: number) => (n >= 1e9 ? `${(n / 1e9).toFixed(2)}B` : n >= 1e6 ? `${(n / 1e6).toFixed(1)}M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)}K` : String(n));

export function info(args: Record<string, string | boolean>): string {
  const name = (args.preset ?? 'tiny') as PresetName;
  const num = (k: string) => {
    if (args[k] === undefined) return undefined;
    const v = Number(args[k]);
    if (!Number.isInteger(v) || v < 1) throw new Error(`vlmoe info: --${k} must be a positive integer, got '${String(args[k])}'`);
    return v;
  };
  const experts = num('experts'), k = num('k');
  if (k !== undefined && !experts) throw new Error('vlmoe info: --k needs --experts');
  const cfg = preset(name, experts ? { experts, k } : {});
  const r = resolveVLMoConfig(cfg);
  const p = parameterCount(cfg);
  const summary = {
    preset: name, dim: r.dim, depth: r.depth, heads: r.heads, vlBlocks: r.vlBlocks, imageSize: r.imageSize, patchSize: r.patchSize,
    vocabSize: r.vocabSize, experts: r.moe?.numExperts ?? 0, k: r.moe?.k ?? 0, moeBlocks: r.moe?.blocks ?? [],
    totalParameters: p.total, activeParameters: p.active, parametersPerExpert: p.perExpert,
  };
  if (args.json) return JSON.stringify(summary);
  const rows: [string, string][] = [
    ['model', `${experts ? `VL-MoE-${name}/${experts}E (top-${r.moe!.k})` : `VLMo-${name} (dense)`}`],
    ['blocks × dim × heads', `${r.depth} × ${r.dim} × ${r.heads} (VL-FFN in the top ${r.vlBlocks})`],
    ['image / patch / vocab', `${r.imageSize} px / ${r.patchSize} / ${r.vocabSize}`],
    ...(r.moe ? [['MoE blocks', `${r.moe.blocks.join(', ')} (V and T pools of ${r.moe.numExperts} experts, ${human(p.perExpert)} each)`] as [string, string]] : []),
    ['total parameters', `${human(p.total)} (${p.total.toLocaleString('en-US')})`],
    ['active per token', `${human(p.active)} (${p.active.toLocaleString('en-US')})`],
  ];
  const w = Math.max(...rows.map(([a]) => a.length));
  return rows.map(([a, b]) => `${a.padEnd(w)}  ${b}`).join('\n');
}

/**
 * Sparse upcycling (Komatsuzaki et al. 2022): a VL-MoE started from a dense VLMo's weights.
 * Every MoE layer whose place the checkpoint holds as a dense FFN (`….ffn.fc1.weight`, …)
 * gets every expert as a copy of that FFN (optionally with noise so the copies can drift
 * apart), its router fresh (the model's own initialisation); every other weight loads by name.
 * MoE layers the checkpoint already holds as experts load as they are, so the same call starts
 * a run from an MoE checkpoint of the same config too.
 *
 * A copy of the dense FFN per expert computes the dense model's function exactly when a
 * token's kept combine weights sum to 1 (`preSoftmax: false`, `scoreFunction: 'sigmoid'` with
 * k > 1, or DeepSpeed's renormalised top-k ≥ 2; dropless): the upcycled model then starts
 * where the dense one stopped (tested). DeepSpeed's top-1 scales the output by the gate value.
 */
import * as T from '@vlmoe/tensor';
import { MoE } from '../layers/moe_layer.js';

export interface UpcycleReport {
  /** MoE layers made from a dense FFN (module names). */
  upcycled: string[];
  /** MoE layers loaded from the checkpoint's own experts. */
  loaded: string[];
  /** Parameters left at this model's initialisation (routers, shared experts, residual mixing, new heads). */
  fresh: string[];
}

/**
 * Loads `weights` (a checkpoint's state dict in the global layout, e.g. `loadCheckpointWeights`)
 * into `model`, upcycling the MoE layers the checkpoint holds as dense FFNs (see the file
 * comment). Call it before the engine wraps the model (expert parallelism keeps a slice of the
 * experts). `noise`: relative noise on each expert's weight matrices (0 = exact copies),
 * drawn from `generator`. Errors name the layer or the key that does not fit.
 */
export function upcycle(model: T.nn.Module, weights: Record<string, T.Tensor>, o: { noise?: number; generator?: T.Generator } = {}): UpcycleReport {
  const report: UpcycleReport = { upcycled: [], loaded: [], fresh: [] };
  const consumed = new Set<string>();
  const generator = o.generator ?? new T.Generator(0);
  for (const [name, m] of model.namedModules()) {
    if (!(m instanceof MoE)) continue;
    if (Object.hasOwn(weights, `${name}.experts.w1`)) {
      report.loaded.push(name);
      continue;
    }
    // the dense model's FFN at this place: a DenseFFN's `ffn` beside where the MoE sits
    const dense = `${name.replace(/\.moe$/, '')}.ffn`;
    const w = (k: string) => weights[`${dense}.${k}`] ?? null;
    const fc1 = w('fc1.weight'), fc2 = w('fc2.weight');
    if (!fc1 || !fc2) throw new Error(`upcycle: the checkpoint has neither experts for the MoE layer '${name}' nor a dense FFN at '${dense}' (fc1.weight, fc2.weight): a different model config?`);
    if (m.gate.options.numExperts !== m.numExperts || m.experts.ffnHiddenSize !== fc1.shape[0]) throw new Error(`upcycle: '${name}' has experts of hidden size ${m.experts.ffnHiddenSize}, the dense FFN ${fc1.shape[0]}: fine-grained experts (expertSizeRatio > 1) are not copies of the dense FFN`);
    m.experts.copyDense(fc1, w('fc1.bias'), fc2, w('fc2.bias'), { noise: o.noise, generator });
    // a residual MoE's dense MLP starts as the dense FFN too
    if (m.mlp) T.noGrad(() => {
      T.copy_(m.mlp!.fc1.weight, fc1);
      T.copy_(m.mlp!.fc2.weight, fc2);
      if (m.mlp!.fc1.bias && w('fc1.bias')) T.copy_(m.mlp!.fc1.bias, w('fc1.bias')!);
      if (m.mlp!.fc2.bias && w('fc2.bias')) T.copy_(m.mlp!.fc2.bias, w('fc2.bias')!);
    });
    for (const k of ['fc1.weight', 'fc1.bias', 'fc2.weight', 'fc2.bias']) consumed.add(`${dense}.${k}`);
    report.upcycled.push(name);
  }
  const rest = Object.fromEntries(Object.entries(weights).filter(([k]) => !consumed.has(k)));
  const { missingKeys, unexpectedKeys } = model.loadStateDict(rest, { strict: false });
  if (unexpectedKeys.length) throw new Error(`upcycle: the checkpoint has weights this model has no place for: ${unexpectedKeys.slice(0, 5).join(', ')}${unexpectedKeys.length > 5 ? ', …' : ''} (a different model config?)`);
  // the upcycled layers' experts (and residual MLPs) were just written: not fresh
  const written = (k: string) => report.upcycled.some((n) => k.startsWith(`${n}.experts.`) || k.startsWith(`${n}.mlp.`));
  report.fresh = missingKeys.filter((k) => !written(k));
  return report;
}

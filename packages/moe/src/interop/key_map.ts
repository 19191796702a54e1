/**
 * The machinery behind the checkpoint converters (unilm_vlmo.ts, deepspeed_moe.ts): a table of
 * rules, each one tensor of ours ↔ one or more tensors of theirs (E per-expert tensors for one
 * stacked expert weight), applied in either direction with every key and shape checked.
 *
 * A conversion fails with one `CheckpointKeyError` listing every problem at once: keys the
 * source has that no rule takes (with the reason when the other model has no counterpart,
 * else the nearest expected key), keys a rule needs that the source lacks, and shape
 * mismatches (naming both shapes). Nothing is dropped or invented silently: dropping a key
 * the other model cannot hold takes `ignore`, supplying a tensor the source cannot provide
 * takes `fill` (import only).
 *
 * Results are views of the source tensors where the layouts agree or differ by a transpose
 * (no copy; dispose source and result independently) and new tensors where they must be
 * assembled (stacked experts).
 */
import * as T from '@vlmoe/tensor';

export interface KeyRule {
  /** Our state-dict key and its shape. */
  ours: string;
  oursShape: number[];
  /** Their key(s) and shapes (several: one per expert). */
  theirs: string[];
  theirsShapes: number[][];
  /** Their tensors (already cast to our dtype) → ours; default: the one tensor as is. */
  toOurs?: (ts: T.Tensor[]) => T.Tensor;
  /** Our tensor → theirs; default: the tensor as is. */
  toTheirs?: (t: T.Tensor) => T.Tensor[];
  /** Why the shapes or the values are transformed (for docs and messages). */
  note?: string;
}

/** A key one side has and the other cannot hold, and why (an exact key, or a regular expression). */
export interface NoCounterpart {
  key: string | RegExp;
  reason: string;
}

export interface ConvertOptions {
  /**
   * Source keys to drop knowingly: exact keys, or globs where '*' matches any run of characters (e.g. '*.gate.expertBias'). Each must match a
   * key the source has (a typo is an error too).
   */
  ignore?: string[];
  /**
   * Import only: our tensors for keys the checkpoint cannot provide (e.g. a fresh model's
   * `backbone.imagePos` when the checkpoint uses relative position bias). Each key must be one
   * the conversion would otherwise report missing.
   */
  fill?: Record<string, T.Tensor>;
}

/** What a converter must know besides the rules. */
export interface ConvertSpec {
  /** The two formats' names for messages, e.g. 'unilm VLMo' and 'vlmoe'. */
  from: string;
  to: string;
  /** Keys the source may have that the target cannot hold, with the reason. */
  noCounterpart: NoCounterpart[];
  /** dtype every converted tensor gets (import: our model's); undefined keeps the source's. */
  dtype?: T.DType;
}

/** Every problem of one conversion, listed. */
export class CheckpointKeyError extends Error {
  override name = 'CheckpointKeyError';
  constructor(readonly what: string, readonly problems: string[]) {
    const shown = problems.slice(0, 40);
    super(`${what}: ${problems.length} problem${problems.length === 1 ? '' : 's'}:\n  ${shown.join('\n  ')}${problems.length > shown.length ? `\n  … and ${problems.length - shown.length} more` : ''}`);
  }
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((s, i) => s === b[i]);
}

/** A key against an `ignore` pattern: the key itself, or a glob where `*` matches any run of characters (e.g. `*.gate.expertBias`). */
function matchesPattern(key: string, pattern: string): boolean {
  if (!pattern.includes('*')) return key === pattern;
  return new RegExp(`^${pattern.split('*').map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`).test(key);
}

function reasonFor(key: string, list: NoCounterpart[]): string | undefined {
  return list.find((n) => (typeof n.key === 'string' ? n.key === key : n.key.test(key)))?.reason;
}

/** A view of `t` in dtype `d` (a cast copy when it differs). */
function inDtype(t: T.Tensor, d: T.DType | undefined): T.Tensor {
  return d === undefined || t.dtype === d ? t.detach() : T.cast(t, d);
}

/**
 * Applies `rules` to `src`. `direction` 'import': src holds their keys, the result ours;
 * 'export': src holds ours, the result theirs.
 */
export function convertKeys(src: Record<string, T.Tensor>, rules: readonly KeyRule[], direction: 'import' | 'export', spec: ConvertSpec, opts: ConvertOptions = {}): Record<string, T.Tensor> {
  const what = `${direction === 'import' ? 'import' : 'export'} ${spec.from} → ${spec.to}`;
  const problems: string[] = [];
  if (src === null || typeof src !== 'object') throw new TypeError(`${what}: expected a state dict (a record of tensors), got ${String(src)}`);
  const used = new Set<string>();
  const ignore = opts.ignore ?? [];
  for (const pat of ignore) if (!Object.keys(src).some((k) => matchesPattern(k, pat))) problems.push(`ignore: '${pat}' matches no key of the source`);
  const fill = opts.fill ?? {};
  if (direction === 'export' && Object.keys(fill).length) problems.push('fill is for import only');
  const fillUsed = new Set<string>();
  const out: Record<string, T.Tensor> = {};
  const made: T.Tensor[] = [];
  const put = (k: string, t: T.Tensor) => {
    Object.defineProperty(out, k, { value: t, enumerable: true, writable: true, configurable: true });
    made.push(t);
  };
  const expectedSrcKeys: string[] = [];
  try {
    T.noGrad(() => {
      for (const r of rules) {
        const srcKeys = direction === 'import' ? r.theirs : [r.ours];
        const srcShapes = direction === 'import' ? r.theirsShapes : [r.oursShape];
        expectedSrcKeys.push(...srcKeys);
        const missing = srcKeys.filter((k) => !Object.hasOwn(src, k));
        if (missing.length) {
          if (direction === 'import' && Object.hasOwn(fill, r.ours)) {
            const f = fill[r.ours]!;
            fillUsed.add(r.ours);
            if (!sameShape(f.shape, r.oursShape)) problems.push(`fill '${r.ours}': shape [${f.shape.join(', ')}], expected [${r.oursShape.join(', ')}]`);
            else put(r.ours, inDtype(f, spec.dtype));
            continue;
          }
          const many = missing.length > 3 ? `${missing.slice(0, 3).map((k) => `'${k}'`).join(', ')} and ${missing.length - 3} more` : missing.map((k) => `'${k}'`).join(', ');
          problems.push(`missing ${many}${direction === 'import' ? ` (for our '${r.ours}'${r.note ? `; ${r.note}` : ''})` : ''}`);
          for (const k of srcKeys) used.add(k);
          continue;
        }
        let bad = false;
        srcKeys.forEach((k, i) => {
          used.add(k);
          const t = src[k]!;
          if (!(t instanceof T.Tensor)) {
            problems.push(`'${k}' is not a tensor`);
            bad = true;
          } else if (!sameShape(t.shape, srcShapes[i]!)) {
            problems.push(`'${k}' has shape [${t.shape.join(', ')}], expected [${srcShapes[i]!.join(', ')}]${r.note ? ` (${r.note})` : ''}`);
            bad = true;
          }
        });
        if (bad || problems.length) continue; // once something is wrong, only collect problems
        const ts = srcKeys.map((k) => inDtype(src[k]!, spec.dtype));
        if (direction === 'import') {
          const t = r.toOurs ? r.toOurs(ts) : ts[0]!;
          if (r.toOurs) for (const x of ts) if (x !== t) x.dispose();
          if (!sameShape(t.shape, r.oursShape)) throw new Error(`internal: rule for '${r.ours}' made shape [${t.shape.join(', ')}]`);
          put(r.ours, t);
        } else {
          const parts = r.toTheirs ? r.toTheirs(ts[0]!) : [ts[0]!];
          if (r.toTheirs) ts[0]!.dispose();
          parts.forEach((p, i) => {
            if (!sameShape(p.shape, r.theirsShapes[i]!)) throw new Error(`internal: rule for '${r.theirs[i]}' made shape [${p.shape.join(', ')}]`);
            put(r.theirs[i]!, p);
          });
        }
      }
    });
    for (const k of Object.keys(fill)) if (!fillUsed.has(k)) problems.push(`fill '${k}': the source already provides it, or it is not one of our keys`);
    for (const k of Object.keys(src)) {
      if (used.has(k) || ignore.some((p) => matchesPattern(k, p))) continue;
      const reason = reasonFor(k, spec.noCounterpart);
      if (reason) problems.push(`'${k}' has no counterpart in ${spec.to}: ${reason} (pass ignore: ['${k}'] to drop it knowingly)`);
      else problems.push(`unknown key '${k}'${T.didYouMean(k, expectedSrcKeys)}`);
    }
    if (problems.length) throw new CheckpointKeyError(what, problems);
  } catch (e) {
    for (const t of made) t.dispose();
    throw e;
  }
  return out;
}

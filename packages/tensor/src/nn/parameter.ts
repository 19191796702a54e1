/**
 * Parameter: a leaf tensor that requires grad, owned by its module (never freed by a
 * scope), with optional tags the parallel engine reads (e.g. `{expert: true, group: 'moe'}`).
 */
import { noGrad } from '../autograd.js';
import { contiguous, copy_ } from '../ops/elementwise.js';
import { keep } from '../scope.js';
import { Tensor } from '../tensor.js';

export interface ParamTags {
  /** Expert parameters are partitioned over the expert-data-parallel group. */
  expert?: boolean;
  /** Optimiser group name (e.g. 'no_decay'); free-form. */
  group?: string;
  [key: string]: unknown;
}

/** Where new parameters' storage comes from inside withParameterPlacement (null: `data`'s own). */
let placement: ((like: Tensor) => Tensor) | null = null;

/**
 * Runs `build` with every Parameter created meanwhile stored in a tensor made by `place(data)`
 * (a fresh contiguous CPU tensor of data's shape and dtype, e.g. `zerosFileBacked`), its values
 * copied there: a model can be built with its weights in files instead of RAM (the parallel
 * engine's `zeroInit`). Initialisers that write a parameter in place after creating it write
 * into the placed storage. Not re-entrant: a nested call throws.
 */
export function withParameterPlacement<R>(place: (like: Tensor) => Tensor, build: () => R): R {
  if (placement) throw new Error('withParameterPlacement: already placing parameters (calls do not nest)');
  placement = place;
  try {
    return build();
  } finally {
    placement = null;
  }
}

export class Parameter extends Tensor {
  tags: ParamTags;

  /** Takes over `data`'s storage (made contiguous first); `requiresGrad` defaults to true. */
  constructor(data: Tensor, opts: { requiresGrad?: boolean; tags?: ParamTags } = {}) {
    data.check('Parameter');
    let src = noGrad(() => contiguous(data));
    let placed: Tensor | null = null;
    if (placement && src.device === 'cpu') {
      placed = placement(src);
      noGrad(() => copy_(placed!, src));
      src = placed;
    }
    super(src.storage, src.shape.slice(), src.strides.slice(), src.offset, src.dtype);
    placed?.dispose(); // the parameter holds the placed storage alone
    keep(this);
    this.tags = { ...(opts.tags ?? {}) };
    if (opts.requiresGrad ?? true) this.requiresGrad_(true);
  }

  override toString(): string {
    return `Parameter(shape=[${this.shape.join(', ')}], dtype=${this.dtype}, device=${this.device}${Object.keys(this.tags).length ? `, tags=${JSON.stringify(this.tags)}` : ''})`;
  }
}

/**
 * A parameter made from a tensor nobody else holds (a fresh initialiser's result): the
 * temporary's reference to the storage is dropped at once, so the storage belongs to the
 * parameter alone and is freed when the parameter is (replacing a layer's parameters — expert
 * parallelism keeping a slice, tensor parallelism splitting a layer — frees the old ones then,
 * not when the collector gets to the temporary).
 */
export function parameterFrom(fresh: Tensor, opts: { requiresGrad?: boolean; tags?: ParamTags } = {}): Parameter {
  const p = new Parameter(fresh, opts);
  fresh.dispose();
  return p;
}

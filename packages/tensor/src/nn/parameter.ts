/**
 * Parameter: a leaf tensor that requires grad, owned by its module (never freed by a
 * scope), with optional tags the parallel engine reads (e.g. `{expert: true, group: 'moe'}`).
 */
import { noGrad } from '../autograd.js';
import { deferToFile, isDeferred, parameterFileDir } from '../deferred.js';
import { emptyTensor, zerosFileBacked } from '../ops/creation.js';
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

export class Parameter extends Tensor {
  tags: ParamTags;

  /**
   * Takes over `data`'s storage (made contiguous first); `requiresGrad` defaults to true.
   * Inside `deferredInit({fileDir})` (deferred.ts) its bytes go to a scratch file there: at
   * once when `data` is an ordinary tensor, when first needed when it is deferred.
   */
  constructor(data: Tensor, opts: { requiresGrad?: boolean; tags?: ParamTags } = {}) {
    data.check('Parameter');
    let src = noGrad(() => contiguous(data));
    let placed: Tensor | null = null;
    const dir = parameterFileDir();
    if (dir !== null && src.device === 'cpu') {
      if (isDeferred(src)) deferToFile(src, dir);
      else {
        placed = zerosFileBacked(src.shape, dir, { dtype: src.dtype });
        noGrad(() => copy_(placed!, src));
        src = placed;
      }
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

/** An uninitialised parameter for a layer's initialiser to fill (deferred inside deferredInit). */
export function emptyParameter(shape: number[], opts: { dtype?: 'float32' | 'float64'; device?: string } = {}): Parameter {
  return parameterFrom(emptyTensor(shape, { dtype: opts.dtype ?? 'float32', device: opts.device ?? 'cpu' }));
}

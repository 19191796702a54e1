/**
 * Writers for the addon's fused multi-tensor optimiser kernels
 * (packages/native-cuda/src/cpu/optim.cpp, cuda/optim.cu): one native call updates many tensors. Lists
 * longer than the argument block holds are split into several calls.
 */
import { native } from '@vlmoe/native-cuda';
import { dtypeCode } from '../dtype.js';
import { A, put } from '../backend/native.js';
import type { Tensor } from '../tensor.js';

/** Doubles in the argument block (packages/native-cuda/src/args.h, kArgsLen). */
const ARGS_LEN = A.length;

/**
 * True when a tensor can go to the fused kernels: contiguous float32/float64 on the CPU or a
 * CUDA device (one call takes the tensors of one device and dtype: group with `fusedKey`).
 */
export function fusable(t: Tensor): boolean {
  return (t.dtype === 'float32' || t.dtype === 'float64') && t.isContiguous();
}

/** The grouping key of one fused call: dtype and device. */
export function fusedKey(t: Tensor): string {
  return `${t.dtype}@${t.device}`;
}

function chunks<T>(items: readonly T[], header: number, per: number): T[][] {
  const max = Math.max(1, Math.floor((ARGS_LEN - header) / per));
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += max) out.push(items.slice(i, i + max));
  return out;
}

export interface AdamHyper {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  maximize: boolean;
  decoupled: boolean;
  amsgrad: boolean;
}

export interface AdamItem {
  param: Tensor;
  grad: Tensor;
  expAvg: Tensor;
  expAvgSq: Tensor;
  maxExpAvgSq: Tensor | null;
  /** Step count after this update. */
  step: number;
}

/** One Adam/AdamW update of every item (all of one dtype, fusable). */
export function adamStep(items: readonly AdamItem[], h: AdamHyper): void {
  if (items.length === 0) return;
  const dt = dtypeCode[items[0]!.param.dtype];
  for (const part of chunks(items, 7, h.amsgrad ? 12 : 10)) {
    let i = 0;
    A[i++] = part.length;
    A[i++] = h.lr;
    A[i++] = h.beta1;
    A[i++] = h.beta2;
    A[i++] = h.eps;
    A[i++] = h.weightDecay;
    A[i++] = h.maximize ? 1 : 0;
    for (const it of part) {
      A[i++] = it.step;
      A[i++] = it.param.numel;
      i = put(i, it.param);
      i = put(i, it.grad);
      i = put(i, it.expAvg);
      i = put(i, it.expAvgSq);
      if (h.amsgrad) i = put(i, it.maxExpAvgSq!);
    }
    native.adamStep(dt, h.decoupled ? 1 : 0, h.amsgrad ? 1 : 0);
  }
}

export interface SgdHyper {
  lr: number;
  momentum: number;
  dampening: number;
  weightDecay: number;
  nesterov: boolean;
  maximize: boolean;
}

export interface SgdItem {
  param: Tensor;
  grad: Tensor;
  /** Momentum buffer (null when momentum is 0). */
  buf: Tensor | null;
  /** The buffer is new: the kernel sets it to the gradient (PyTorch's first-step rule). */
  init: boolean;
}

export function sgdStep(items: readonly SgdItem[], h: SgdHyper): void {
  if (items.length === 0) return;
  const dt = dtypeCode[items[0]!.param.dtype];
  const mom = h.momentum !== 0;
  for (const part of chunks(items, 7, mom ? 8 : 5)) {
    let i = 0;
    A[i++] = part.length;
    A[i++] = h.lr;
    A[i++] = h.momentum;
    A[i++] = h.dampening;
    A[i++] = h.weightDecay;
    A[i++] = h.nesterov ? 1 : 0;
    A[i++] = h.maximize ? 1 : 0;
    for (const it of part) {
      A[i++] = it.param.numel;
      i = put(i, it.param);
      i = put(i, it.grad);
      if (mom) {
        A[i++] = it.init ? 1 : 0;
        i = put(i, it.buf!);
      }
    }
    native.sgdStep(dt, mom ? 1 : 0);
  }
}

/**
 * kind 0: sum of squares, 1: max |x|, 2: sum |x|^p over every tensor (all of one dtype,
 * fusable). Combined over chunks the same way.
 */
export function multiTensorNorm(ts: readonly Tensor[], kind: 0 | 1 | 2, p = 2): number {
  if (ts.length === 0) return 0;
  const dt = dtypeCode[ts[0]!.dtype];
  let acc = 0;
  for (const part of chunks(ts, 2, 3)) {
    let i = 0;
    A[i++] = part.length;
    A[i++] = p;
    for (const t of part) {
      A[i++] = t.numel;
      i = put(i, t);
    }
    const r = native.multiTensorNorm(dt, kind);
    acc = kind === 1 ? (r > acc || Number.isNaN(r) ? r : acc) : acc + r;
  }
  return acc;
}

/** x *= scale for every tensor (all of one dtype, fusable). */
export function multiTensorScale(ts: readonly Tensor[], scale: number): void {
  if (ts.length === 0) return;
  const dt = dtypeCode[ts[0]!.dtype];
  for (const part of chunks(ts, 2, 3)) {
    let i = 0;
    A[i++] = part.length;
    A[i++] = scale;
    for (const t of part) {
      A[i++] = t.numel;
      i = put(i, t);
    }
    native.multiTensorScale(dt);
  }
}

/** Groups items by a key, keeping first-seen order. */
export function groupBy<T>(items: readonly T[], key: (x: T) => string): T[][] {
  const m = new Map<string, T[]>();
  for (const x of items) {
    const k = key(x);
    let l = m.get(k);
    if (!l) m.set(k, (l = []));
    l.push(x);
  }
  return [...m.values()];
}

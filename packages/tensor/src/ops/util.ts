/** Shape helpers shared by the ops. */
import { fmtShape, type Shape, type Tensor } from '../tensor.js';

/** Broadcast two shapes (NumPy rules); the error names the op and both shapes. */
export function broadcastShapes(a: Shape, b: Shape, op: string): number[] {
  if (a.length === b.length) {
    let same = true;
    for (let i = 0; i < a.length; ++i) if (a[i] !== b[i]) { same = false; break; }
    if (same) return a as number[];
  }
  const n = Math.max(a.length, b.length);
  const out = new Array<number>(n);
  for (let i = 0; i < n; ++i) {
    const x = a[a.length - n + i] ?? 1;
    const y = b[b.length - n + i] ?? 1;
    if (x !== y && x !== 1 && y !== 1) throw new Error(`${op}: shapes ${fmtShape(a)} and ${fmtShape(b)} cannot be broadcast together (dim ${i}: ${x} vs ${y})`);
    out[i] = x === 1 ? y : x;
  }
  return out;
}

export function sameShape(a: Shape, b: Shape): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; ++i) if (a[i] !== b[i]) return false;
  return true;
}

export function checkSameDevice(op: string, ...ts: Tensor[]): void {
  const d = ts[0]!.device;
  for (const t of ts) if (t.device !== d) throw new Error(`${op}: tensors are on different devices (${ts.map((x) => x.device).join(', ')})`);
}

/** Normalises a list of dims (or all dims when undefined), sorted and unique. */
export function normDims(t: Tensor, dims: number | readonly number[] | undefined, op: string): number[] {
  if (dims === undefined) return t.shape.map((_, i) => i);
  const list = typeof dims === 'number' ? [dims] : dims;
  const out = [...new Set(list.map((d) => t.dim(d, op)))];
  return out.sort((x, y) => x - y);
}

/** Moving tensors between devices (a copy through host memory; gradients flow back). */
import { native } from '@vlmoe/native-cuda';
import { needsGrad, record } from '../autograd.js';
import { dtypeSize, typedArrayFor } from '../dtype.js';
import { normalizeDevice } from '../device.js';
import { empty, type Tensor } from '../tensor.js';
import { contiguous } from './elementwise.js';

export function toDevice(x: Tensor, device: string): Tensor {
  x.check('to');
  const dev = device === 'cpu' ? 'cpu' : normalizeDevice(device);
  if (dev === x.device) return x;
  const src = contiguous(x);
  const out = empty(x.shape, x.dtype, dev);
  const bytes = x.numel * dtypeSize[x.dtype];
  if (bytes > 0) {
    if (src.device === 'cpu') {
      native.write(out.storage.handle, 0, typedArrayFor(x.dtype, src.storage.arrayBuffer(), src.offset * dtypeSize[x.dtype], x.numel));
    } else if (dev === 'cpu') {
      native.read(src.storage.handle, src.offset * dtypeSize[x.dtype], typedArrayFor(x.dtype, out.storage.arrayBuffer(), 0, x.numel));
    } else {
      // device to device: stage through the host
      const host = typedArrayFor(x.dtype, new ArrayBuffer(bytes), 0, x.numel);
      native.read(src.storage.handle, src.offset * dtypeSize[x.dtype], host);
      native.write(out.storage.handle, 0, host);
    }
  }
  if (needsGrad(x)) {
    const from = x.device;
    record(out, 'to', [x], (g) => [toDevice(g, from)]);
  }
  return out;
}

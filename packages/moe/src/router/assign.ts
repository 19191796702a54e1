/**
 * Token-choice slots and capacity, shared by the composed (route.ts) and fused
 * (route_fused.ts) routers: capacity from the options, one native moeAssign pass, then the
 * counts read back for the drop count and, dropless, the capacity (the largest count, or the
 * expert-parallel group's through reduceCapacity).
 */
import * as T from '@vlmoe/tensor';
import { capacity, type ResolvedRouterOptions } from './options.js';
import type { RouteOptions } from './route_types.js';

export interface TokenSlots {
  assigned: ReturnType<typeof T.moeAssign>;
  capacity: number;
  dropped: number;
}

export function assignTokenSlots(expertIndex: T.Tensor, priority: T.Tensor | null, S: number, o: ResolvedRouterOptions, options: RouteOptions): TokenSlots {
  const E = o.numExperts, k = o.k;
  const training = options.training ?? true;
  const C0 = o.dropTokens ? capacity(S, E, training ? o.capacityFactor : o.evalCapacityFactor, k, o.minCapacity) : S * k;
  const a = T.moeAssign(expertIndex, { numExperts: E, capacity: C0, priority, withRows: true });
  const before = a.countsBefore.dataSync() as BigInt64Array, after = a.countsAfter.dataSync() as BigInt64Array;
  let C = C0, dropped = 0, maxCount = 0;
  for (let e = 0; e < E; e++) {
    dropped += Number(before[e]! - after[e]!);
    maxCount = Math.max(maxCount, Number(before[e]));
  }
  if (!o.dropTokens) C = options.reduceCapacity ? options.reduceCapacity(maxCount) : maxCount;
  return { assigned: a, capacity: C, dropped };
}

/** @vlmoe/moe — routers, experts and MoE layers with DeepSpeed semantics (in progress: see issue 6). */
export { referenceRoute, type RouteResult, type ReferenceRouteOptions } from './router/reference.js';
export { resolveRouterOptions, capacity, type RouterOptions, type ResolvedRouterOptions, type DropPolicy, type NoisyGatePolicy } from './router/options.js';

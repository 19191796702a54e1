/** @vlmoe/moe — routers, experts and MoE layers with DeepSpeed semantics; VL-MoE's modality FFNs. */
export { referenceRoute, referenceExpertChoice, type RouteResult, type ReferenceRouteOptions } from './router/reference.js';
export { resolveRouterOptions, ROUTER_OPTIONS_SHAPE, capacity, gateEps, type RouterOptions, type ResolvedRouterOptions, type DropPolicy, type NoisyGatePolicy } from './router/options.js';
export { route, compactRows, type RouteOptions, type GateOutput, type RoutingPolicy } from './router/route.js';
export { routeFused, fusedGateEnabled, fusedGateUnsupported } from './router/route_fused.js';
export { TopKGate, DEFAULT_ROUTING_POLICY, type TopKGateOptions } from './router/gate.js';
export { Experts, type ExpertsOptions, type ExpertActivation } from './layers/experts.js';
export { MoE, routerEntropy, resolveMoELayerConfig, MOE_LAYER_CONFIG_SHAPE, type MoELayerConfig, type ResolvedMoELayerConfig, type MoEOptions, type MoEOutput, type ExpertGroup, type ExpertDispatch } from './layers/moe_layer.js';
export { ModalityFFN, ModalityFFN as ModalityMoE, DenseFFN, MoEFFN, NormedFFN, VISION, TEXT, type ModalityFFNOptions, type FFNSpec, type FFNLayer, type FFNOutput } from './layers/modality.js';
export { VLMo, type VLMoInput, type VLMoOutput, type Pass } from './models/vlmo.js';
export { preset, parameterCount, resolveVLMoConfig, parseVLMoConfig, canonicalMoE, VLMO_CONFIG_SCHEMA, MOE_CONFIG_SCHEMA, DEEPSPEED_MOE_ALIASES, VLMOE_ROUTING, type VLMoConfig, type MoEConfig, type ResolvedMoEConfig, type PresetName, type ResolvedVLMoConfig } from './models/config.js';
export { Pooler, ITCHead, ITMHead, MLMHead, VQAHead, NLVRHead, sampleHardNegatives, rankGather, type ITCGather } from './models/heads.js';
export { VLMoPretrainer, pretrainBatchFrom, type PretrainBatch, type PretrainArrays, type PretrainLosses } from './models/pretrainer.js';
export { VQAModel, NLVRModel, RetrievalModel, createTaskModel, taskBatchFrom, encodeImages, encodeTexts, type DualEncoder, TASKS, type TaskName, type TaskArrays, type TaskBatch, type TaskOutput, type AnyTaskModel } from './models/tasks.js';
export { evalAdapter, type TaskModels, type VLMoEvalAdapter } from './models/adapter.js';
export { convertKeys, CheckpointKeyError, type KeyRule, type NoCounterpart, type ConvertOptions, type ConvertSpec } from './interop/key_map.js';
export { importVlmoCheckpoint, exportVlmoCheckpoint, vlmoRules, vlmoMoELayers, type VlmoImportOptions, type VlmoExportOptions } from './interop/unilm_vlmo.js';
export { deepspeedMoeRules, mergeDeepSpeedExperts, splitDeepSpeedExperts, loadDeepSpeedCheckpoint, saveDeepSpeedCheckpoint, deepspeedExpertFile, DEEPSPEED_MODEL_FILE, DEEPSPEED_EXPERT_INFIX, type DeepSpeedCheckpoint, type DeepSpeedMoELayerSpec } from './interop/deepspeed_moe.js';
export { importDeepSpeedMoECheckpoint, exportDeepSpeedMoECheckpoint } from './interop/vlmo_deepspeed.js';

/**
 * @vlmoe/eval — metrics exactly as the field computes them, task harnesses over Arrow
 * splits with a small model adapter, and a benchmark suite writing Markdown, JSON and SVG.
 */
export * from './metrics/index.js';
export { type ModelAdapter, type Scores, readScores } from './adapter.js';
export { evaluateVqa, type VqaEvalOptions, type VqaEvalResult } from './harness/vqa.js';
export { evaluateNlvr, type NlvrEvalOptions, type NlvrEvalResult } from './harness/nlvr.js';
export { evaluateRetrieval, type RetrievalEvalOptions, type RetrievalEvalResult } from './harness/retrieval.js';
export { openEvalLoader, textOnlyBatch, type EvalDataOptions } from './harness/data.js';
export { runBenchmarkSuite, markdownTable, formatCount, type SuiteOptions, type SuiteReport, type TaskSpec, type TaskResult } from './report/suite.js';
export { barChartSvg, lineChartSvg, heatmapSvg, curvesFromJsonl, PALETTE, type BarChartOptions, type LineChartOptions, type HeatmapOptions } from './report/svg.js';
export { routingFromJsonl, routingSvgs, routingCharts, type LayerRouting, type RoutingChart } from './report/routing.js';
export { colorShapeBaseline, imageStats, NAMED_COLORS, type ColorShapeBaselineOptions } from './baselines/color_shape.js';
export { pairedBootstrap, quantileSorted, verdict, type PairedScores, type BootstrapOptions, type Interval } from './stats/bootstrap.js';
export { meanSd, formatMeanSd, type MeanSd } from './stats/summary.js';
export { exampleScores, pairScores, type ExampleMetric, type ExampleScores } from './stats/per_example.js';
export { firstReach, finalValue, curveFromValJsonl, runCost, curveSvgs, timeToQuality, timeToQualityMarkdown, formatFlops, type Curve, type CurvePoint, type Reach, type TimeToQuality } from './report/time_to_quality.js';

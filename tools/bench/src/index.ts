export type { BenchmarkResult, BenchContext, BenchmarkSuite, BenchReport } from './types.js';
export {
  median,
  percentile,
  timeRuns,
  result,
  meetsTarget,
  describeTargets,
  interleaved,
  interleavings,
} from './measure.js';
export { renderSvg, renderMarkdown, mergeResults, svgFileName, fmt } from './report.js';
export { LANES, lanes, endpointValue } from './workload.js';

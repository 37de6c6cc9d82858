export {
  HealthServer,
  type HealthServerOptions,
  type HealthCheck,
  type CheckResult,
} from './health-server.js';
export { ProgramMetrics, type ProgramMetricsOptions, type GaugeReading } from './metrics.js';
export { parsePrometheusText, type PrometheusSample } from './parse.js';
export { livenessOf, readinessOf } from './checks.js';

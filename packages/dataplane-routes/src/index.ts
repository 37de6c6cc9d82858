export { RoutesProgrammer, type RoutesProgrammerOptions } from './routes-programmer.js';
export {
  planRoutes,
  tapSysctls,
  emptyActual,
  type EndpointRoutes,
  type RoutesDesired,
  type RoutesActual,
  type RoutesPlan,
  type LinkState,
  type EndpointProgramState,
} from './plan.js';
export { parseMonitorLine, type MonitorLinkEvent } from './read.js';

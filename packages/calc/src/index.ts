export type {
  ResourceView,
  DesiredRoutes,
  DesiredEndpointRoutes,
  DesiredBgp,
  DesiredBgpPeer,
  DesiredExportPolicy,
  CalcOptions,
} from './types.js';
export { computeRoutes, localEndpoints, endpointAddresses } from './routes.js';
export { computeBgp, advertisedPrefixes, DEFAULT_AS } from './bgp.js';
export { emptyView, viewOf, type ResourceSource } from './view.js';
export {
  computeDhcp,
  dhcpHostname,
  type DesiredDhcpInstance,
  type DesiredDhcpSubnet,
  type DesiredDhcpHost,
  type DhcpLayout,
} from './dhcp.js';
export {
  PolicyCompiler,
  chainNames,
  groupChain,
  endpointChain,
  dispatchChains,
  DispatchTree,
  TrackedMap,
  ruleMatch,
  ACCEPT_MARK,
  type FilterOptions,
  type DesiredFilter,
  type DesiredFamilyFilter,
  type DesiredTable,
  type DesiredIpset,
  type Rules,
} from './policy.js';

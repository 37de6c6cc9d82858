import type { ResourceView } from './types.js';

/** A view with nothing in it; tests and callers fill the maps they need. */
export function emptyView(): ResourceView {
  return {
    hosts: new Map(),
    bgpConfiguration: undefined,
    bgpPeers: new Map(),
    ipPools: new Map(),
    networks: new Map(),
    subnets: new Map(),
    securityGroups: new Map(),
    endpoints: new Map(),
  };
}

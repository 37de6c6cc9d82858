import type { Kind, ResourceOf } from '@calyx/model';
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

/** Anything that holds resources by kind and id (the datastore's ResourceCache does). */
export interface ResourceSource {
  map<K extends Kind>(kind: K): ReadonlyMap<string, ResourceOf<K>>;
}

/** The view calc reads, from resources by kind (BGP configuration: the one named `default`). */
export function viewOf(source: ResourceSource): ResourceView {
  return {
    hosts: source.map('Host'),
    bgpConfiguration: source.map('BgpConfiguration').get('default'),
    bgpPeers: source.map('BgpPeer'),
    ipPools: source.map('IpPool'),
    networks: source.map('Network'),
    subnets: source.map('Subnet'),
    securityGroups: source.map('SecurityGroup'),
    endpoints: source.map('Endpoint'),
  };
}

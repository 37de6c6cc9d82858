import { parseCidr } from '@calyx/netaddr';
import type { BgpPeer, Host, IpPool } from '@calyx/model';
import type {
  CalcOptions,
  DesiredBgp,
  DesiredBgpPeer,
  DesiredExportPolicy,
  ResourceView,
} from './types.js';

export const DEFAULT_AS = 64512;

function asOf(view: ResourceView, h: Host): number {
  return h.asNumber ?? view.bgpConfiguration?.asNumber ?? DEFAULT_AS;
}

function isReflector(h: Host): boolean {
  return h.routeReflectorClusterId !== null;
}

/** CIDRs of the enabled pools a peer is told about: the named ones, or those marked `advertise`. */
export function advertisedPrefixes(
  pools: ReadonlyMap<string, IpPool>,
  names: readonly string[] | null,
): string[] {
  const chosen =
    names === null
      ? [...pools.values()].filter((p) => p.advertise)
      : names.map((n) => pools.get(n)).filter((p): p is IpPool => !!p);
  return chosen
    .filter((p) => !p.disabled)
    .map((p) => p.cidr)
    .sort();
}

function hostPeers(
  view: ResourceView,
  self: Host,
  other: Host,
  opts: { rrClient: boolean; exportPolicy: DesiredExportPolicy },
): DesiredBgpPeer[] {
  const out: DesiredBgpPeer[] = [];
  const base = {
    name: `node-${other.name}`,
    description: `Calyx host ${other.name}`,
    localAs: asOf(view, self),
    peerAs: asOf(view, other),
    direct: true,
    routeReflectorClient: opts.rrClient,
    ...(opts.rrClient && self.routeReflectorClusterId
      ? { clusterId: self.routeReflectorClusterId }
      : {}),
    gracefulRestart: true,
    export: opts.exportPolicy,
    import: 'all' as const,
  };
  if (self.ipv4Address && other.ipv4Address)
    out.push({
      ...base,
      family: 4,
      neighborAddress: other.ipv4Address,
      localAddress: self.ipv4Address,
    });
  if (self.ipv6Address && other.ipv6Address)
    out.push({
      ...base,
      family: 6,
      neighborAddress: other.ipv6Address,
      localAddress: self.ipv6Address,
    });
  return out;
}

function explicitPeer(view: ResourceView, self: Host, p: BgpPeer): DesiredBgpPeer | undefined {
  const family = p.peerIp.includes(':') ? 6 : 4;
  const localAddress = family === 4 ? self.ipv4Address : self.ipv6Address;
  if (!localAddress) return undefined; // no session of that family from this host
  const exportPolicy: DesiredExportPolicy =
    p.role === 'edge'
      ? {
          kind: 'prefixes',
          prefixes: advertisedPrefixes(view.ipPools, p.pools).filter(
            (c) => parseCidr(c).family === family,
          ),
        }
      : { kind: 'endpoints' };
  return {
    name: `peer-${p.name}`,
    description: `${p.role} ${p.name}`,
    neighborAddress: p.peerIp,
    localAddress,
    localAs: asOf(view, self),
    peerAs: p.asNumber,
    ...(p.password !== null ? { password: p.password } : {}),
    direct: p.directlyConnected,
    routeReflectorClient: false,
    gracefulRestart: true,
    family,
    export: exportPolicy,
    import: 'all',
    // An edge router may hand hosts their way out.
    acceptDefault: p.role === 'edge',
  };
}

/**
 * This host's BGP speaker: full mesh with every other host, or (mesh off) sessions with the
 * route reflectors (and, on a reflector, with every host as its client), plus the explicit
 * peers that apply to it. Null when the host has no Host resource or no IPv4 router id.
 */
export function computeBgp(
  view: ResourceView,
  hostname: string,
  opts: CalcOptions = {},
): DesiredBgp | null {
  const self = view.hosts.get(hostname);
  if (!self) return null;
  const routerId = self.ipv4Address ?? self.routeReflectorClusterId;
  if (!routerId) return null;
  const cfg = view.bgpConfiguration;
  const mesh = cfg?.nodeToNodeMesh ?? true;
  const others = [...view.hosts.values()]
    .filter((h) => h.name !== hostname)
    .sort((a, b) => (a.name < b.name ? -1 : 1));
  const peers: DesiredBgpPeer[] = [];
  if (isReflector(self)) {
    // A reflector's sessions are the same with the mesh on or off, so switching the mesh
    // off only removes host-to-host sessions: the reflected routes are already in place and
    // traffic never waits for a session to come up.
    for (const o of others) {
      peers.push(
        ...hostPeers(view, self, o, {
          rrClient: !isReflector(o),
          exportPolicy: { kind: 'endpoints-and-reflected' },
        }),
      );
    }
  } else {
    for (const o of mesh ? others : others.filter(isReflector)) {
      peers.push(
        ...hostPeers(view, self, o, { rrClient: false, exportPolicy: { kind: 'endpoints' } }),
      );
    }
  }
  // Explicit peers (global, or for this host) replace computed sessions to the same address.
  const explicit = [...view.bgpPeers.values()]
    .filter((p) => p.host === null || p.host === hostname)
    .sort((a, b) => (a.name < b.name ? -1 : 1))
    .map((p) => explicitPeer(view, self, p))
    .filter((p): p is DesiredBgpPeer => p !== undefined && p.neighborAddress !== p.localAddress);
  const taken = new Set(explicit.map((p) => p.neighborAddress));
  return {
    routerId,
    logLevel: cfg?.logLevel ?? 'info',
    endpointRouteProtocol: opts.routeProtocol ?? 80,
    installRoutes: true,
    timers: {
      connectRetrySeconds: cfg?.connectRetrySeconds ?? 5,
      holdSeconds: cfg?.holdSeconds ?? 90,
      gracefulRestartSeconds: cfg?.gracefulRestartSeconds ?? 120,
    },
    peers: [...peers.filter((p) => !taken.has(p.neighborAddress)), ...explicit],
  };
}

import { bitsOf, formatIP, normalizeMac, parseIP } from '@calyx/netaddr';
import { assertInterfaceName } from '@calyx/dataplane';

/** What one local endpoint needs on the host. */
export interface EndpointRoutes {
  interfaceName: string;
  mac: string;
  /** The endpoint's own addresses (host routes, static neighbours). */
  addresses: readonly string[];
}

/** The desired routing state of one host. */
export interface RoutesDesired {
  endpoints: readonly EndpointRoutes[];
  /**
   * Gateway addresses VMs use (subnet gateways). They are held on the gateway interface so
   * the host answers ARP for them (and NDP through per-tap proxy entries).
   */
  gateways: readonly string[];
}

export interface LinkState {
  name: string;
  ifindex: number;
  /** Administratively up. */
  up: boolean;
}

/** What the kernel holds that this programmer owns, as read back (or as last written). */
export interface RoutesActual {
  /** `dst` (canonical, no prefix) → device, for routes of our protocol. */
  routes: Map<string, string>;
  /** `dev|ip` → MAC for permanent neighbours on our interfaces. */
  neighbours: Map<string, string>;
  /** `dev|ip` proxy NDP entries on our interfaces. */
  proxies: Set<string>;
  /** Addresses on the gateway interface (canonical, no prefix). */
  gatewayAddresses: Set<string>;
  /** Interface name → ifindex it was configured (sysctls) at. */
  configured: Map<string, number>;
}

export function emptyActual(): RoutesActual {
  return {
    routes: new Map(),
    neighbours: new Map(),
    proxies: new Set(),
    gatewayAddresses: new Set(),
    configured: new Map(),
  };
}

export type EndpointProgramState = 'programmed' | 'missing-interface' | 'interface-down';

export interface RoutesPlan {
  /** Lines for `ip -force -batch -`, removals first. */
  batch: string[];
  /** `key=value` (slash form) per-interface sysctls for newly seen interfaces. */
  sysctls: string[];
  /** Interfaces whose sysctls are in `sysctls`, with the ifindex to remember. */
  configure: Map<string, number>;
  /** Per interface: whether everything for it is in place after the plan is applied. */
  status: Map<string, EndpointProgramState>;
  counts: {
    routesAdded: number;
    routesRemoved: number;
    neighbours: number;
    proxies: number;
    gatewayAddresses: number;
  };
  /** The actual state once the plan has been applied. */
  next: RoutesActual;
}

export interface PlanOptions {
  routeProtocol: number;
  gatewayInterface: string;
}

/** The sysctls a tap needs for routed L3 (LINUX-NOTES: each one proven necessary). */
export function tapSysctls(tap: string, ipv6: boolean): string[] {
  const out = [
    `net/ipv4/conf/${tap}/forwarding=1`,
    `net/ipv4/conf/${tap}/proxy_arp=1`,
    // The default delays each proxied ARP reply by up to 0.8 s.
    `net/ipv4/neigh/${tap}/proxy_delay=0`,
  ];
  if (ipv6)
    out.push(
      `net/ipv6/conf/${tap}/forwarding=1`,
      `net/ipv6/conf/${tap}/proxy_ndp=1`,
      `net/ipv6/neigh/${tap}/proxy_delay=0`,
    );
  return out;
}

const CANONICAL_V4 =
  /^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;
const CANONICAL_MAC = /^[0-9a-f]{2}(?::[0-9a-f]{2}){5}$/;

/** Canonical text and family; the common case (already-canonical IPv4) skips bigint parsing. */
function canonical(ip: string): { text: string; family: 4 | 6 } {
  if (CANONICAL_V4.test(ip)) return { text: ip, family: 4 };
  const a = parseIP(ip);
  return { text: formatIP(a), family: a.family };
}

function familyOf(canonicalIp: string): 4 | 6 {
  return canonicalIp.includes(':') ? 6 : 4;
}

/**
 * The pure diff: what to add and remove so the kernel matches `desired`, given `actual` and
 * the interfaces that exist. Endpoints whose interface is missing or down get nothing yet
 * (and their stale state is removed); they are programmed once the interface appears.
 */
export function planRoutes(
  desired: RoutesDesired,
  actual: RoutesActual,
  links: ReadonlyMap<string, LinkState>,
  opts: PlanOptions,
): RoutesPlan {
  const proto = String(opts.routeProtocol);
  const wantRoutes = new Map<string, string>();
  const wantNeigh = new Map<string, string>();
  const wantProxy = new Set<string>();
  const status = new Map<string, EndpointProgramState>();
  const configure = new Map<string, number>();
  const sysctls: string[] = [];
  const gateways = desired.gateways.map(canonical);
  const v6Gateways = gateways.filter((g) => g.family === 6);
  const wantGateways = new Set(gateways.map((g) => g.text));

  for (const ep of desired.endpoints) {
    assertInterfaceName(ep.interfaceName);
    const link = links.get(ep.interfaceName);
    if (!link) {
      status.set(ep.interfaceName, 'missing-interface');
      continue;
    }
    if (!link.up) {
      status.set(ep.interfaceName, 'interface-down');
      continue;
    }
    const mac = CANONICAL_MAC.test(ep.mac) ? ep.mac : normalizeMac(ep.mac);
    const addrs = ep.addresses.map(canonical);
    const hasV6 = addrs.some((a) => a.family === 6);
    for (const a of addrs) {
      wantRoutes.set(a.text, ep.interfaceName);
      wantNeigh.set(`${ep.interfaceName}|${a.text}`, mac);
    }
    if (hasV6) for (const g of v6Gateways) wantProxy.add(`${ep.interfaceName}|${g.text}`);
    if (actual.configured.get(ep.interfaceName) !== link.ifindex) {
      sysctls.push(...tapSysctls(ep.interfaceName, hasV6));
      configure.set(ep.interfaceName, link.ifindex);
    }
    status.set(ep.interfaceName, 'programmed');
  }

  const removals: string[] = [];
  const additions: string[] = [];
  const counts = {
    routesAdded: 0,
    routesRemoved: 0,
    neighbours: 0,
    proxies: 0,
    gatewayAddresses: 0,
  };

  for (const [dst, dev] of actual.routes) {
    if (!wantRoutes.has(dst) && links.has(dev)) {
      removals.push(`route del ${dst}/${bitsOf(familyOf(dst))} dev ${dev} proto ${proto}`);
      counts.routesRemoved++;
    }
  }
  for (const key of actual.neighbours.keys()) {
    if (!wantNeigh.has(key)) {
      const [dev, ip] = key.split('|') as [string, string];
      if (links.has(dev)) {
        removals.push(`neigh del ${ip} dev ${dev}`);
        counts.neighbours++;
      }
    }
  }
  for (const key of actual.proxies) {
    if (!wantProxy.has(key)) {
      const [dev, ip] = key.split('|') as [string, string];
      if (links.has(dev)) {
        removals.push(`neigh del proxy ${ip} dev ${dev}`);
        counts.proxies++;
      }
    }
  }
  for (const a of actual.gatewayAddresses) {
    if (!wantGateways.has(a)) {
      removals.push(`address del ${a}/${bitsOf(familyOf(a))} dev ${opts.gatewayInterface}`);
      counts.gatewayAddresses++;
    }
  }
  for (const g of gateways) {
    if (!actual.gatewayAddresses.has(g.text)) {
      additions.push(
        `address add ${g.text}/${g.family === 4 ? 32 : 128} dev ${opts.gatewayInterface}${g.family === 6 ? ' nodad' : ''}`,
      );
      counts.gatewayAddresses++;
    }
  }
  for (const [dst, dev] of wantRoutes) {
    if (actual.routes.get(dst) !== dev) {
      const fam = familyOf(dst);
      additions.push(
        `route replace ${dst}/${bitsOf(fam)} dev ${dev}${fam === 4 ? ' scope link' : ''} proto ${proto}`,
      );
      counts.routesAdded++;
    }
  }
  for (const [key, mac] of wantNeigh) {
    if (actual.neighbours.get(key) !== mac) {
      const [dev, ip] = key.split('|') as [string, string];
      additions.push(`neigh replace ${ip} lladdr ${mac} dev ${dev} nud permanent`);
      counts.neighbours++;
    }
  }
  for (const key of wantProxy) {
    if (!actual.proxies.has(key)) {
      const [dev, ip] = key.split('|') as [string, string];
      additions.push(`neigh replace proxy ${ip} dev ${dev}`);
      counts.proxies++;
    }
  }
  const configured = new Map(
    [...actual.configured].filter(([name, ifindex]) => links.get(name)?.ifindex === ifindex),
  );
  for (const [name, ifindex] of configure) configured.set(name, ifindex);
  const next: RoutesActual = {
    routes: wantRoutes,
    neighbours: wantNeigh,
    proxies: wantProxy,
    gatewayAddresses: wantGateways,
    configured,
  };
  return { batch: [...removals, ...additions], sysctls, configure, status, counts, next };
}

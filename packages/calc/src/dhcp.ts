import { parseCidr } from '@calyx/netaddr';
import { dhcpInterfaceNameFor } from '@calyx/model';
import { localEndpoints } from './routes.js';
import type { ResourceView } from './types.js';

export interface DesiredDhcpSubnet {
  /** dnsmasq tag: `sub-<subnet id>`. */
  tag: string;
  subnetId: string;
  /** Network address and prefix length. */
  network: string;
  prefixLength: number;
  /** The gateway: held by the DHCP interface, handed out as router, and the DHCP server address. */
  gateway: string;
  dnsServers: string[];
  mtu: number;
  /** Classless static routes (option 121), default route included when any is sent. */
  classlessRoutes: { destination: string; nexthop: string }[];
}

export interface DesiredDhcpHost {
  mac: string;
  ip: string;
  hostname: string;
  subnetId: string;
}

export interface DesiredDhcpInstance {
  /** Unique per host; names the state directory. */
  name: string;
  /** Interface holding the gateways (`ns-…`). */
  interfaceName: string;
  subnets: DesiredDhcpSubnet[];
  hosts: DesiredDhcpHost[];
}

export type DhcpLayout = 'per-host' | 'per-network';

/** A DNS label for a port: its name when usable, else `host-10-65-0-10` (Neutron's form). */
export function dhcpHostname(name: string, ip: string): string {
  const clean = name
    .toLowerCase()
    .replace(/[^a-z0-9-]/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 63)
    .replace(/-+$/, '');
  return clean && /^[a-z]/.test(clean) ? clean : `host-${ip.replace(/[.:]/g, '-')}`;
}

/**
 * What this host's DHCP server(s) must serve: IPv4 subnets with DHCP enabled (and a gateway)
 * of the networks that have ports on this host, and a static lease per local port address.
 * `per-host` puts every network in one dnsmasq (`ns-calyx`); `per-network` gives each network
 * its own (`ns-<network id>`), as Calico's DHCP agent does.
 */
export function computeDhcp(
  view: ResourceView,
  hostname: string,
  layout: DhcpLayout = 'per-host',
): DesiredDhcpInstance[] {
  const local = localEndpoints(view, hostname).filter((e) => e.adminStateUp);
  if (local.length === 0) return [];
  const networks = new Set(local.map((e) => e.networkId));
  // Per host, every DHCP subnet of the deployment is declared (ranges are on dnsmasq's command
  // line: this way only creating or deleting a subnet restarts it, never a port landing on a
  // network new to this host). Per network, only the networks with local ports.
  const served = [...view.subnets.values()]
    .filter(
      (s) =>
        (layout === 'per-host' || networks.has(s.networkId)) &&
        s.enableDhcp &&
        s.ipVersion === 4 &&
        s.gatewayIp !== null,
    )
    .sort((a, b) => (a.id < b.id ? -1 : 1));
  const bySubnet = new Map(served.map((s) => [s.id, s]));
  const instances = new Map<string, DesiredDhcpInstance>();
  const instanceFor = (networkId: string): DesiredDhcpInstance => {
    const key = layout === 'per-host' ? 'calyx' : networkId;
    let inst = instances.get(key);
    if (!inst) {
      inst = {
        name: key,
        interfaceName: layout === 'per-host' ? 'ns-calyx' : dhcpInterfaceNameFor(networkId),
        subnets: [],
        hosts: [],
      };
      instances.set(key, inst);
    }
    return inst;
  };
  for (const s of served) {
    const c = parseCidr(s.cidr);
    const routes = s.hostRoutes.map((r) => ({ destination: r.destination, nexthop: r.nexthop }));
    instanceFor(s.networkId).subnets.push({
      tag: `sub-${s.id}`,
      subnetId: s.id,
      network: s.cidr.slice(0, s.cidr.indexOf('/')),
      prefixLength: c.prefixLength,
      gateway: s.gatewayIp!,
      dnsServers: [...s.dnsServers],
      mtu: view.networks.get(s.networkId)?.mtu ?? 1500,
      // Clients ignore option 3 when option 121 is present: carry the default route in it too.
      classlessRoutes: routes.length
        ? [...routes, { destination: '0.0.0.0/0', nexthop: s.gatewayIp! }]
        : [],
    });
  }
  for (const e of local) {
    for (const f of e.fixedIps) {
      const s = bySubnet.get(f.subnetId);
      if (!s) continue;
      instanceFor(e.networkId).hosts.push({
        mac: e.mac,
        ip: f.ipAddress,
        hostname: dhcpHostname(e.name, f.ipAddress),
        subnetId: s.id,
      });
    }
  }
  return [...instances.values()].sort((a, b) => (a.name < b.name ? -1 : 1));
}

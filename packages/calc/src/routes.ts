import { bitsOf, parseCidr } from '@calyx/netaddr';
import type { Endpoint } from '@calyx/model';
import type { DesiredRoutes, ResourceView } from './types.js';

/** The endpoints bound to `hostname`, in id order. */
export function localEndpoints(view: ResourceView, hostname: string): Endpoint[] {
  return [...view.endpoints.values()]
    .filter((e) => e.host === hostname)
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/** Addresses routed to an endpoint: its fixed IPs and single-address allowed address pairs. */
export function endpointAddresses(e: Endpoint): string[] {
  const out = e.fixedIps.map((f) => f.ipAddress);
  for (const pair of e.allowedAddressPairs) {
    const c = parseCidr(pair.ipAddress);
    if (c.prefixLength === bitsOf(c.family))
      out.push(pair.ipAddress.slice(0, pair.ipAddress.indexOf('/')));
  }
  return [...new Set(out)];
}

/**
 * Host routes for this host's admin-up endpoints, and the gateway addresses of their subnets
 * (which the host answers ARP/NDP for).
 */
export function computeRoutes(view: ResourceView, hostname: string): DesiredRoutes {
  const endpoints: DesiredRoutes['endpoints'] = [];
  const gateways = new Set<string>();
  for (const e of localEndpoints(view, hostname)) {
    if (!e.adminStateUp) continue;
    endpoints.push({ interfaceName: e.interfaceName, mac: e.mac, addresses: endpointAddresses(e) });
    for (const f of e.fixedIps) {
      const gw = view.subnets.get(f.subnetId)?.gatewayIp;
      if (gw) gateways.add(gw);
    }
  }
  return { endpoints, gateways: [...gateways].sort() };
}

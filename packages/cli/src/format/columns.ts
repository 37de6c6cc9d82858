import type { Kind, ResourceOf } from '@calyx/model';
import type { Cell } from './table.js';

interface Columns<K extends Kind> {
  headers: readonly string[];
  row(r: ResourceOf<K>): Cell[];
}

const used = (allocations: readonly (number | null)[]): number =>
  allocations.reduce<number>((n, a) => (a === null ? n : n + 1), 0);

/** The table view of each kind: the fields that tell resources apart at a glance. */
export const COLUMNS: { [K in Kind]: Columns<K> } = {
  Network: {
    headers: ['ID', 'MTU', 'PROJECT', 'NAME'],
    row: (r) => [r.id, r.mtu, r.project, r.name],
  },
  Subnet: {
    headers: ['ID', 'NETWORK', 'CIDR', 'GATEWAY', 'DHCP', 'NAME'],
    row: (r) => [r.id, r.networkId, r.cidr, r.gatewayIp, r.enableDhcp, r.name],
  },
  SecurityGroup: {
    headers: ['ID', 'NAME', 'RULES'],
    row: (r) => [r.id, r.name, r.rules.length],
  },
  Endpoint: {
    headers: ['ID', 'HOST', 'NETWORK', 'INTERFACE', 'MAC', 'ADDRESSES', 'GROUPS', 'ADMIN'],
    row: (r) => [
      r.id,
      r.host,
      r.networkId,
      r.interfaceName,
      r.mac,
      r.fixedIps.map((f) => f.ipAddress),
      r.securityGroupIds,
      r.adminStateUp ? 'up' : 'down',
    ],
  },
  EndpointLocation: {
    headers: ['ID', 'HOST'],
    row: (r) => [r.id, r.host ?? '(unbound)'],
  },
  Host: {
    headers: ['NAME', 'IPV4', 'IPV6', 'AS', 'RR-CLUSTER'],
    row: (r) => [r.name, r.ipv4Address, r.ipv6Address, r.asNumber, r.routeReflectorClusterId],
  },
  BgpConfiguration: {
    headers: ['NAME', 'AS', 'MESH', 'LOG', 'HOLD'],
    row: (r) => [r.name, r.asNumber, r.nodeToNodeMesh, r.logLevel, r.holdSeconds],
  },
  BgpPeer: {
    headers: ['NAME', 'HOST', 'PEER-IP', 'AS', 'ROLE'],
    row: (r) => [r.name, r.host ?? '(all)', r.peerIp, r.asNumber, r.role],
  },
  IpPool: {
    headers: ['NAME', 'CIDR', 'BLOCK', 'NAT', 'ADVERTISE', 'DISABLED', 'SUBNET'],
    row: (r) => [
      r.name,
      r.cidr,
      `/${r.blockSize}`,
      r.natOutgoing,
      r.advertise,
      r.disabled,
      r.subnetId,
    ],
  },
  IpamBlock: {
    headers: ['CIDR', 'POOL', 'AFFINITY', 'USED', 'FREE', 'SIZE'],
    row: (r) => [
      r.cidr,
      r.pool,
      r.affinity,
      used(r.allocations),
      r.unallocated.length,
      r.allocations.length,
    ],
  },
  IpamHandle: {
    headers: ['HANDLE', 'BLOCKS'],
    row: (r) => [r.handleId, Object.entries(r.blocks).map(([cidr, n]) => `${cidr}=${n}`)],
  },
  BlockAffinity: {
    headers: ['HOST', 'CIDR', 'STATE'],
    row: (r) => [r.host, r.cidr, r.state],
  },
  EndpointStatus: {
    headers: ['HOST', 'ENDPOINT', 'STATUS', 'UPDATED', 'REASON'],
    row: (r) => [r.host, r.endpointId, r.status, r.updatedAt, r.reason],
  },
  HostStatus: {
    headers: ['HOST', 'AGENT', 'VERSION', 'IN-SYNC', 'ENDPOINTS', 'STARTED', 'UPDATED'],
    row: (r) => [r.host, r.agent, r.version, r.inSync, r.endpoints, r.startedAt, r.updatedAt],
  },
};

export function tableOf<K extends Kind>(
  kind: K,
  items: readonly ResourceOf<K>[],
): { headers: readonly string[]; rows: Cell[][] } {
  const c = COLUMNS[kind] as Columns<K>;
  return { headers: c.headers, rows: items.map((r) => c.row(r)) };
}

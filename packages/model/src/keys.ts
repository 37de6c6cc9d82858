import { KeyLayoutError } from './errors.js';
import { HOST_PATTERN, ID_PATTERN } from './names.js';
import { HANDLE_PATTERN } from './ipam.js';

/** Everything Calyx stores lives under this prefix. */
export const ROOT = '/calyx/v1/';

/** CIDRs appear in keys with '/' replaced by '-': `10.0.0.0/26` → `10.0.0.0-26`. */
export function cidrToKeySegment(cidr: string): string {
  return cidr.replace('/', '-');
}
export function keySegmentToCidr(segment: string): string {
  const i = segment.lastIndexOf('-');
  if (i < 0) throw new KeyLayoutError(segment, 'not a CIDR key segment');
  return `${segment.slice(0, i)}/${segment.slice(i + 1)}`;
}

export const prefixes = {
  network: `${ROOT}network/`,
  subnet: `${ROOT}subnet/`,
  securityGroup: `${ROOT}securitygroup/`,
  /** All bound endpoints of all hosts. */
  boundEndpoints: `${ROOT}host/`,
  unboundEndpoints: `${ROOT}unbound/endpoint/`,
  endpointLocation: `${ROOT}endpoint-location/`,
  host: `${ROOT}node/`,
  bgpConfiguration: `${ROOT}bgpconfig/`,
  bgpPeer: `${ROOT}bgppeer/`,
  ipPool: `${ROOT}ippool/`,
  ipam: `${ROOT}ipam/`,
  ipamBlock: `${ROOT}ipam/block/`,
  ipamHandle: `${ROOT}ipam/handle/`,
  blockAffinity: `${ROOT}ipam/affinity/`,
  status: `${ROOT}status/`,
  leader: `${ROOT}leader/`,
  /** One host's endpoints. */
  hostEndpoints: (host: string) => `${ROOT}host/${host}/endpoint/`,
  /** One host's block affinities. */
  hostAffinities: (host: string) => `${ROOT}ipam/affinity/${host}/`,
  /** One host's status records. */
  hostStatus: (host: string) => `${ROOT}status/${host}/`,
} as const;

export const keys = {
  network: (id: string) => `${prefixes.network}${id}`,
  subnet: (id: string) => `${prefixes.subnet}${id}`,
  securityGroup: (id: string) => `${prefixes.securityGroup}${id}`,
  endpoint: (host: string | null, id: string) =>
    host === null ? `${prefixes.unboundEndpoints}${id}` : `${prefixes.hostEndpoints(host)}${id}`,
  endpointLocation: (id: string) => `${prefixes.endpointLocation}${id}`,
  host: (name: string) => `${prefixes.host}${name}`,
  bgpConfiguration: (name: string) => `${prefixes.bgpConfiguration}${name}`,
  bgpPeer: (name: string) => `${prefixes.bgpPeer}${name}`,
  ipPool: (name: string) => `${prefixes.ipPool}${name}`,
  ipamBlock: (cidr: string) => `${prefixes.ipamBlock}${cidrToKeySegment(cidr)}`,
  ipamHandle: (handleId: string) => `${prefixes.ipamHandle}${handleId}`,
  blockAffinity: (host: string, cidr: string) =>
    `${prefixes.hostAffinities(host)}${cidrToKeySegment(cidr)}`,
  endpointStatus: (host: string, id: string) => `${prefixes.hostStatus(host)}endpoint/${id}`,
  hostStatus: (host: string) => `${prefixes.hostStatus(host)}liveness`,
  leader: (name: string) => `${prefixes.leader}${name}`,
} as const;

export type ParsedKey =
  | { kind: 'Network' | 'Subnet' | 'SecurityGroup' | 'EndpointLocation'; id: string }
  | { kind: 'Endpoint'; host: string | null; id: string }
  | { kind: 'Host' | 'BgpConfiguration' | 'BgpPeer' | 'IpPool'; name: string }
  | { kind: 'IpamBlock'; cidr: string }
  | { kind: 'IpamHandle'; handleId: string }
  | { kind: 'BlockAffinity'; host: string; cidr: string }
  | { kind: 'EndpointStatus'; host: string; id: string }
  | { kind: 'HostStatus'; host: string }
  | { kind: 'Leader'; name: string };

const CIDR_SEGMENT = /^[0-9a-fA-F.:]+-[0-9]{1,3}$/;

/** Parses a key of the layout; throws KeyLayoutError for anything else. */
export function parseKey(key: string): ParsedKey {
  if (!key.startsWith(ROOT)) throw new KeyLayoutError(key, `not under ${ROOT}`);
  const p = key.slice(ROOT.length).split('/');
  const id = (s: string | undefined, re = ID_PATTERN): string => {
    if (s === undefined || !re.test(s)) throw new KeyLayoutError(key, `bad segment '${s ?? ''}'`);
    return s;
  };
  const cidr = (s: string | undefined): string => {
    if (s === undefined || !CIDR_SEGMENT.test(s))
      throw new KeyLayoutError(key, `bad CIDR segment '${s ?? ''}'`);
    return keySegmentToCidr(s);
  };
  const len = (n: number): void => {
    if (p.length !== n) throw new KeyLayoutError(key, `expected ${n} segments after ${ROOT}`);
  };
  switch (p[0]) {
    case 'network':
      len(2);
      return { kind: 'Network', id: id(p[1]) };
    case 'subnet':
      len(2);
      return { kind: 'Subnet', id: id(p[1]) };
    case 'securitygroup':
      len(2);
      return { kind: 'SecurityGroup', id: id(p[1]) };
    case 'endpoint-location':
      len(2);
      return { kind: 'EndpointLocation', id: id(p[1]) };
    case 'host':
      len(4);
      if (p[2] !== 'endpoint') break;
      return { kind: 'Endpoint', host: id(p[1], HOST_PATTERN), id: id(p[3]) };
    case 'unbound':
      len(3);
      if (p[1] !== 'endpoint') break;
      return { kind: 'Endpoint', host: null, id: id(p[2]) };
    case 'node':
      len(2);
      return { kind: 'Host', name: id(p[1], HOST_PATTERN) };
    case 'bgpconfig':
      len(2);
      return { kind: 'BgpConfiguration', name: id(p[1]) };
    case 'bgppeer':
      len(2);
      return { kind: 'BgpPeer', name: id(p[1]) };
    case 'ippool':
      len(2);
      return { kind: 'IpPool', name: id(p[1]) };
    case 'ipam':
      if (p[1] === 'block') {
        len(3);
        return { kind: 'IpamBlock', cidr: cidr(p[2]) };
      }
      if (p[1] === 'handle') {
        len(3);
        return { kind: 'IpamHandle', handleId: id(p[2], HANDLE_PATTERN) };
      }
      if (p[1] === 'affinity') {
        len(4);
        return { kind: 'BlockAffinity', host: id(p[2], HOST_PATTERN), cidr: cidr(p[3]) };
      }
      break;
    case 'status':
      if (p.length === 3 && p[2] === 'liveness')
        return { kind: 'HostStatus', host: id(p[1], HOST_PATTERN) };
      if (p.length === 4 && p[2] === 'endpoint')
        return { kind: 'EndpointStatus', host: id(p[1], HOST_PATTERN), id: id(p[3]) };
      break;
    case 'leader':
      len(2);
      return { kind: 'Leader', name: id(p[1]) };
  }
  throw new KeyLayoutError(key, 'unknown kind');
}

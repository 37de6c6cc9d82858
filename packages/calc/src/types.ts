import type {
  BgpConfiguration,
  BgpPeer,
  Endpoint,
  Host,
  IpPool,
  Network,
  SecurityGroup,
  Subnet,
} from '@calyx/model';

/**
 * Everything calc reads: the resources one host's agent has synced. Endpoints are those of
 * every host (remote security group members live elsewhere); calc picks this host's.
 */
export interface ResourceView {
  hosts: ReadonlyMap<string, Host>;
  bgpConfiguration: BgpConfiguration | undefined;
  bgpPeers: ReadonlyMap<string, BgpPeer>;
  ipPools: ReadonlyMap<string, IpPool>;
  networks: ReadonlyMap<string, Network>;
  subnets: ReadonlyMap<string, Subnet>;
  securityGroups: ReadonlyMap<string, SecurityGroup>;
  /** By endpoint id. */
  endpoints: ReadonlyMap<string, Endpoint>;
}

// The shapes below are what the dataplane programmers accept (dataplane-routes,
// dataplane-bird). They are declared here too so calc stays pure and dependency-free; the
// agent, which composes both, is where the compiler checks they still agree.

export interface DesiredEndpointRoutes {
  interfaceName: string;
  mac: string;
  addresses: string[];
}

export interface DesiredRoutes {
  endpoints: DesiredEndpointRoutes[];
  gateways: string[];
}

export type DesiredExportPolicy =
  | { kind: 'endpoints' }
  | { kind: 'endpoints-and-reflected' }
  | { kind: 'prefixes'; prefixes: string[] }
  | { kind: 'none' };

export interface DesiredBgpPeer {
  name: string;
  description?: string;
  neighborAddress: string;
  localAddress?: string;
  localAs: number;
  peerAs: number;
  password?: string;
  direct: boolean;
  routeReflectorClient: boolean;
  clusterId?: string;
  gracefulRestart: boolean;
  family: 4 | 6;
  export: DesiredExportPolicy;
  import: 'all' | 'none';
  acceptDefault?: boolean;
}

export interface DesiredBgp {
  routerId: string;
  logLevel: 'none' | 'info' | 'debug';
  endpointRouteProtocol: number | null;
  installRoutes: boolean;
  timers: { connectRetrySeconds: number; holdSeconds: number; gracefulRestartSeconds: number };
  peers: DesiredBgpPeer[];
}

export interface CalcOptions {
  /** Route protocol number the agent marks endpoint routes with. Default 80. */
  routeProtocol?: number;
}

/**
 * A typed BIRD 2 configuration for a Calyx host: one BGP speaker that learns this host's
 * endpoint routes from the kernel (by route protocol number), tells its peers about them
 * under per-peer export policies, and installs what it learns into the kernel.
 */
export interface BirdConfig {
  /** 32-bit router id, dotted (the host's IPv4 address). */
  routerId: string;
  logLevel: 'none' | 'info' | 'debug';
  /** Where BIRD logs (absolute path); stderr when absent. */
  logFile?: string;
  /**
   * Kernel route protocol of this host's endpoint routes (learned and exported). Null for a
   * speaker without endpoints (a standalone route reflector, an edge router).
   */
  endpointRouteProtocol: number | null;
  /** Install routes learned over BGP into the kernel. */
  installRoutes: boolean;
  timers: BirdTimers;
  peers: BirdPeer[];
}

export interface BirdTimers {
  /** BIRD `connect delay time` and `connect retry time`. */
  connectRetrySeconds: number;
  holdSeconds: number;
  gracefulRestartSeconds: number;
}

/**
 * What a peer is told:
 * - `endpoints`: this host's endpoint routes (iBGP mesh, a host towards its route reflector);
 * - `endpoints-and-reflected`: also routes learned over BGP (a route reflector to its peers);
 * - `prefixes`: only this host's endpoint routes inside `prefixes` (edge peers: public pools).
 * A default route is never exported.
 */
export type ExportPolicy =
  | { kind: 'endpoints' }
  | { kind: 'endpoints-and-reflected' }
  | { kind: 'prefixes'; prefixes: readonly string[] }
  | { kind: 'none' };

export interface BirdPeer {
  /** Stable identity of the peer (used to derive the BIRD protocol name). */
  name: string;
  description?: string;
  neighborAddress: string;
  localAddress?: string;
  localAs: number;
  peerAs: number;
  password?: string;
  /** The neighbor is on a directly connected network (a flat fabric). */
  direct: boolean;
  /** This speaker is a route reflector and the peer is its client. */
  routeReflectorClient: boolean;
  /** `rr cluster id` when acting as a route reflector. */
  clusterId?: string;
  gracefulRestart: boolean;
  /** Address families carried; sessions over IPv4 carry 4, over IPv6 carry 6. */
  family: 4 | 6;
  export: ExportPolicy;
  /** Accept routes from this peer (never a default route unless `acceptDefault`). */
  import: 'all' | 'none';
  acceptDefault?: boolean;
}

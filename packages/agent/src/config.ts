export const AGENT_CONFIG = Symbol.for('calyx.AgentConfig');
export const ROUTES_PROGRAMMER = Symbol.for('calyx.RoutesProgrammer');
export const BIRD_CONTROLLER = Symbol.for('calyx.BirdController');
export const IPTABLES_PROGRAMMER = Symbol.for('calyx.IptablesProgrammer');

/** What VMs may reach on their host, beyond DHCP, DNS, ICMP echo and IPv6 neighbour discovery. */
export interface HostServiceConfig {
  protocol: 'tcp' | 'udp';
  port: number;
  /** Only this host address (e.g. metadata on 169.254.169.254). */
  destination?: string;
}

export interface AgentConfig {
  /** This host's name: its Host resource and the datastore prefix of its endpoints. */
  hostname: string;
  /** Program this network namespace instead of the agent's own (tests, the demo). */
  netns?: string;
  /** Where BIRD's config, control socket, pid file and log live. */
  stateDir: string;
  /** Route protocol number of endpoint routes. Default 80. */
  routeProtocol: number;
  /** Re-read the dataplane and repair drift this often (ms); 0 disables. Default 30 s. */
  resyncIntervalMs: number;
  /** Enforce security groups with iptables and ipsets. Default true. */
  securityGroups: boolean;
  /** Extra VM → host services (metadata, …). */
  hostServices: HostServiceConfig[];
  /** VMs may ping their host (gateway). Default true. */
  allowPingHost: boolean;
  /** iptables binaries: the distribution's default, nft or legacy. */
  iptablesBackend: 'default' | 'nft' | 'legacy';
}

export function agentConfig(
  c: Partial<AgentConfig> & Pick<AgentConfig, 'hostname' | 'stateDir'>,
): AgentConfig {
  return {
    routeProtocol: 80,
    resyncIntervalMs: 30_000,
    securityGroups: true,
    hostServices: [],
    allowPingHost: true,
    iptablesBackend: 'default',
    ...c,
  };
}

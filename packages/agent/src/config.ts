import { z } from 'zod';
import {
  datastoreUrlSchema,
  healthSettingsSchema,
  hostNameSettingSchema,
  logLevelSchema,
} from '@calyx/config';

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
  /** The liveness record's lease TTL: the host counts as dead this long after the agent dies. Default 10 s. */
  livenessTtlSeconds: number;
  /** Endpoint status writes are coalesced over this period. Default 100 ms. */
  statusFlushMs: number;
  /** Serve /livez, /readyz and /metrics here (keep it off VM-facing interfaces); omit for none. */
  health?: { host: string; port: number };
  /** Export the Node process metrics too (the program does; embedded agents need not). */
  processMetrics?: boolean;
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
    livenessTtlSeconds: 10,
    statusFlushMs: 100,
    ...c,
  };
}

const hostServiceSchema = z.union([
  z.strictObject({
    protocol: z.enum(['tcp', 'udp']),
    port: z.number().int().min(1).max(65535),
    destination: z.string().optional(),
  }),
  // `tcp:80@169.254.169.254`, as the flag takes it.
  z
    .string()
    .regex(/^(tcp|udp):\d{1,5}(@[0-9a-fA-F.:]+)?$/, 'expected tcp|udp:port[@address]')
    .transform((spec, ctx) => {
      const [proto, rest] = spec.split(':') as [string, string];
      const [port, destination] = rest.split('@') as [string, string | undefined];
      if (Number(port) < 1 || Number(port) > 65535) {
        ctx.addIssue({ code: 'custom', message: 'port must be 1..65535' });
        return z.NEVER;
      }
      return {
        protocol: proto as 'tcp' | 'udp',
        port: Number(port),
        ...(destination ? { destination } : {}),
      };
    }),
]);

/**
 * calyx-agent's settings: a file (`--config`, YAML or JSON), `CALYX_AGENT_*` environment
 * variables, then flags. Documented in docs/operations.md.
 */
export const agentSettingsSchema = z.strictObject({
  /** `etcd://host:2379[,host:2379][/namespace]`, `etcds://…?ca=&cert=&key=`, `memory://name`. */
  datastore: datastoreUrlSchema,
  hostname: hostNameSettingSchema,
  netns: z.string().optional(),
  stateDir: z.string().min(1).default('/var/lib/calyx/agent'),
  routeProtocol: z.number().int().min(1).max(255).default(80),
  resyncIntervalMs: z.number().int().min(0).default(30_000),
  securityGroups: z.boolean().default(true),
  hostServices: z.array(hostServiceSchema).default([]),
  allowPingHost: z.boolean().default(true),
  iptablesBackend: z.enum(['default', 'nft', 'legacy']).default('default'),
  livenessTtlSeconds: z.number().int().min(2).max(3600).default(10),
  statusFlushMs: z.number().int().min(0).max(60_000).default(100),
  health: healthSettingsSchema(9099),
  logLevel: logLevelSchema,
});
export type AgentSettings = z.output<typeof agentSettingsSchema>;

/** The library config from validated settings. */
export function agentConfigFromSettings(s: AgentSettings): AgentConfig {
  return agentConfig({
    hostname: s.hostname,
    stateDir: s.stateDir,
    routeProtocol: s.routeProtocol,
    resyncIntervalMs: s.resyncIntervalMs,
    securityGroups: s.securityGroups,
    hostServices: s.hostServices,
    allowPingHost: s.allowPingHost,
    iptablesBackend: s.iptablesBackend,
    livenessTtlSeconds: s.livenessTtlSeconds,
    statusFlushMs: s.statusFlushMs,
    processMetrics: true,
    ...(s.netns ? { netns: s.netns } : {}),
    ...(s.health ? { health: s.health } : {}),
  });
}

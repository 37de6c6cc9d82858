import { Container, ContainerModule, inject, injectable } from 'inversify';
import { CLOCK, LOGGER, silentLogger, systemClock, type Clock, type Logger } from '@calyx/core';
import {
  DATASTORE,
  SyncedReconciler,
  datastoreModule,
  type Datastore,
  type ReconcilerStats,
} from '@calyx/datastore';
import { prefixes } from '@calyx/model';
import { computeDhcp, emptyView, type DhcpLayout } from '@calyx/calc';
import { COMMAND_RUNNER, ExecCommandRunner, type CommandRunner } from '@calyx/dataplane';
import { DnsmasqProgrammer, type DnsmasqInstance } from '@calyx/dataplane-dnsmasq';
import {
  HealthServer,
  ProgramMetrics,
  livenessOf,
  readinessOf,
  type CheckResult,
} from '@calyx/telemetry';
import { z } from 'zod';
import {
  datastoreUrlSchema,
  healthSettingsSchema,
  hostNameSettingSchema,
  logLevelSchema,
} from '@calyx/config';

export const DHCP_AGENT_CONFIG = Symbol.for('calyx.DhcpAgentConfig');
export const DNSMASQ_PROGRAMMER = Symbol.for('calyx.DnsmasqProgrammer');

export interface DhcpAgentConfig {
  hostname: string;
  netns?: string;
  /** dnsmasq files live in `<stateDir>/<instance>/`. */
  stateDir: string;
  /** One dnsmasq for all networks (default), or one per network as Calico does. */
  layout: DhcpLayout;
  domain: string;
  leaseSeconds: number;
  reloadDebounceMs: number;
  resyncIntervalMs: number;
  logDhcp: boolean;
  /** Serve /livez, /readyz and /metrics here (keep it off VM-facing interfaces); omit for none. */
  health?: { host: string; port: number };
  /** Export the Node process metrics too (the program does; embedded agents need not). */
  processMetrics?: boolean;
}

export function dhcpAgentConfig(
  c: Partial<DhcpAgentConfig> & Pick<DhcpAgentConfig, 'hostname' | 'stateDir'>,
): DhcpAgentConfig {
  return {
    layout: 'per-host',
    domain: 'calyxlocal',
    leaseSeconds: 86400,
    reloadDebounceMs: 100,
    resyncIntervalMs: 30_000,
    logDhcp: false,
    ...c,
  };
}

/** The DHCP agent: this host's ports, subnets and networks → calc → dnsmasq. */
@injectable()
export class DhcpAgent {
  private readonly loop: SyncedReconciler;
  private watchdog: Promise<void> | undefined;
  readonly metrics: ProgramMetrics;
  private health: HealthServer | undefined;
  private lastDesired: DnsmasqInstance[] = [];
  private applyError: string | undefined;
  private closed = false;

  constructor(
    @inject(DATASTORE) store: Datastore,
    @inject(DHCP_AGENT_CONFIG) readonly config: DhcpAgentConfig,
    @inject(DNSMASQ_PROGRAMMER) readonly dnsmasq: DnsmasqProgrammer,
    @inject(LOGGER) logger: Logger,
    @inject(CLOCK) clock: Clock,
  ) {
    this.loop = new SyncedReconciler(store, {
      prefixes: [prefixes.hostEndpoints(config.hostname), prefixes.subnet, prefixes.network],
      resyncIntervalMs: config.resyncIntervalMs,
      logger: logger.child({ dhcpAgent: config.hostname }),
      clock,
      onResync: () => this.dnsmasq.invalidate(),
      reconcile: async (cache) => {
        const view = {
          ...emptyView(),
          networks: cache.map('Network'),
          subnets: cache.map('Subnet'),
          endpoints: cache.map('Endpoint'),
        };
        const desired = computeDhcp(view, config.hostname, config.layout);
        try {
          await this.metrics.observe('dnsmasq', () => this.dnsmasq.apply(desired));
          this.lastDesired = desired;
          this.applyError = undefined;
        } catch (e) {
          this.applyError = (e as Error).message;
          throw e;
        }
      },
    });
    this.metrics = new ProgramMetrics({
      labels: { host: config.hostname },
      processMetrics: config.processMetrics ?? false,
    });
    const m = this.metrics;
    m.gauge('calyx_syncer_in_sync', '1 when the datastore view is complete.', () =>
      this.loop.stats.inSync ? 1 : 0,
    );
    m.gauge('calyx_dhcp_hosts', 'DHCP host entries served (one per port address).', () =>
      this.lastDesired.reduce((n, i) => n + i.hosts.length, 0),
    );
    m.gauge(
      'calyx_dnsmasq_instances',
      'dnsmasq processes this agent runs.',
      () => this.dnsmasq.pids().size,
    );
    m.gauge(
      'calyx_dnsmasq_reloads',
      'dnsmasq reloads (SIGHUP) since start.',
      () => this.dnsmasq.reloads,
    );
    m.gauge(
      'calyx_dnsmasq_starts',
      'dnsmasq starts and restarts since start.',
      () => this.dnsmasq.starts,
    );
    m.gauge(
      'calyx_reconcile_failures',
      'Reconciles that failed since start.',
      () => this.loop.stats.reconcileFailures,
    );
  }

  /** `/livez`: the loop runs. */
  live(): CheckResult {
    return livenessOf(this.closed);
  }

  /** `/readyz`: in sync, dnsmasq programmed, and every dnsmasq it runs serving. */
  ready(): CheckResult {
    return readinessOf({
      closed: this.closed,
      inSync: this.loop.stats.inSync,
      reconciles: this.loop.stats.reconciles,
      failures: { dnsmasq: this.applyError },
      // Not the last desired set: an instance being removed on purpose is no reason.
      more: this.dnsmasq.notRunning().map((name) => `dnsmasq ${name} is not running`),
    });
  }

  /** Where /livez, /readyz and /metrics are served (after start), if configured. */
  get healthAddress(): { host: string; port: number } | undefined {
    return this.health?.address;
  }

  get stats(): ReconcilerStats {
    return this.loop.stats;
  }

  /** Resolves once dnsmasq serves this host's ports; keeps it alive (restarted if it dies). */
  async start(): Promise<void> {
    this.health = await HealthServer.serve(this.config.health, this);
    try {
      await this.loop.start();
    } catch (e) {
      await this.health?.close();
      throw e;
    }
    this.watchdog = this.dnsmasq.watch(this.loop.signal);
  }

  idle(): Promise<void> {
    return this.loop.idle();
  }

  /** Stops following the datastore; dnsmasq keeps serving as it is. */
  async close(): Promise<void> {
    this.closed = true;
    await this.loop.close();
    await this.watchdog;
    this.dnsmasq.close();
    await this.health?.close();
  }
}

export function dhcpAgentModule(config: DhcpAgentConfig): ContainerModule {
  return new ContainerModule(({ bind }) => {
    bind<DhcpAgentConfig>(DHCP_AGENT_CONFIG).toConstantValue(config);
    bind<DnsmasqProgrammer>(DNSMASQ_PROGRAMMER)
      .toDynamicValue(
        (ctx) =>
          new DnsmasqProgrammer({
            runner: ctx.get<CommandRunner>(COMMAND_RUNNER),
            logger: ctx.get<Logger>(LOGGER),
            clock: ctx.get<Clock>(CLOCK),
            stateDir: config.stateDir,
            domain: config.domain,
            leaseSeconds: config.leaseSeconds,
            reloadDebounceMs: config.reloadDebounceMs,
            logDhcp: config.logDhcp,
            ...(config.netns ? { netns: config.netns } : {}),
          }),
      )
      .inSingletonScope();
    bind(DhcpAgent).toSelf().inSingletonScope();
  });
}

export function createDhcpAgent(
  store: Datastore,
  config: DhcpAgentConfig,
  runtime: { logger?: Logger; clock?: Clock; runner?: CommandRunner } = {},
): DhcpAgent {
  const c = new Container();
  c.load(
    new ContainerModule(({ bind }) => {
      bind<Logger>(LOGGER).toConstantValue(runtime.logger ?? silentLogger);
      bind<Clock>(CLOCK).toConstantValue(runtime.clock ?? systemClock);
      bind<CommandRunner>(COMMAND_RUNNER).toConstantValue(
        runtime.runner ?? new ExecCommandRunner(runtime.logger ? { logger: runtime.logger } : {}),
      );
    }),
    datastoreModule(store),
    dhcpAgentModule(config),
  );
  return c.get(DhcpAgent);
}

/**
 * calyx-dhcp-agent's settings: a file (`--config`, YAML or JSON), `CALYX_DHCP_AGENT_*`
 * environment variables, then flags. Documented in docs/operations.md.
 */
export const dhcpAgentSettingsSchema = z.strictObject({
  datastore: datastoreUrlSchema,
  hostname: hostNameSettingSchema,
  netns: z.string().optional(),
  stateDir: z.string().min(1).default('/var/lib/calyx/dhcp'),
  layout: z.enum(['per-host', 'per-network']).default('per-host'),
  domain: z.string().min(1).default('calyxlocal'),
  leaseSeconds: z.number().int().min(120).default(86400),
  reloadDebounceMs: z.number().int().min(0).default(100),
  resyncIntervalMs: z.number().int().min(0).default(30_000),
  logDhcp: z.boolean().default(false),
  health: healthSettingsSchema(9098),
  logLevel: logLevelSchema,
});
export type DhcpAgentSettings = z.output<typeof dhcpAgentSettingsSchema>;

export function dhcpAgentConfigFromSettings(s: DhcpAgentSettings): DhcpAgentConfig {
  return dhcpAgentConfig({
    hostname: s.hostname,
    stateDir: s.stateDir,
    layout: s.layout,
    domain: s.domain,
    leaseSeconds: s.leaseSeconds,
    reloadDebounceMs: s.reloadDebounceMs,
    resyncIntervalMs: s.resyncIntervalMs,
    logDhcp: s.logDhcp,
    processMetrics: true,
    ...(s.netns ? { netns: s.netns } : {}),
    ...(s.health ? { health: s.health } : {}),
  });
}

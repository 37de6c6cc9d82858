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
import { DnsmasqProgrammer } from '@calyx/dataplane-dnsmasq';

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
        await this.dnsmasq.apply(computeDhcp(view, config.hostname, config.layout));
      },
    });
  }

  get stats(): ReconcilerStats {
    return this.loop.stats;
  }

  /** Resolves once dnsmasq serves this host's ports; keeps it alive (restarted if it dies). */
  async start(): Promise<void> {
    await this.loop.start();
    this.watchdog = this.dnsmasq.watch(this.loop.signal);
  }

  idle(): Promise<void> {
    return this.loop.idle();
  }

  /** Stops following the datastore; dnsmasq keeps serving as it is. */
  async close(): Promise<void> {
    await this.loop.close();
    await this.watchdog;
    this.dnsmasq.close();
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

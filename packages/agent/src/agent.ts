import { inject, injectable } from 'inversify';
import { CLOCK, LOGGER, SerialTask, type Clock, type Logger, type TimerHandle } from '@calyx/core';
import {
  DATASTORE,
  ResourceCache,
  Syncer,
  type Datastore,
  type SyncerMessage,
} from '@calyx/datastore';
import { prefixes, type Kind } from '@calyx/model';
import { computeBgp, computeRoutes, type ResourceView } from '@calyx/calc';
import type { BirdController } from '@calyx/dataplane-bird';
import type { RoutesProgrammer } from '@calyx/dataplane-routes';
import { AGENT_CONFIG, BIRD_CONTROLLER, ROUTES_PROGRAMMER, type AgentConfig } from './config.js';

/** Kinds whose change can alter the BGP configuration. */
const BGP_KINDS: ReadonlySet<Kind> = new Set<Kind>([
  'Host',
  'BgpConfiguration',
  'BgpPeer',
  'IpPool',
]);

export interface AgentStats {
  inSync: boolean;
  reconciles: number;
  reconcileFailures: number;
  lastReconcileMs: number;
  revision: bigint;
}

/**
 * One compute host's agent: syncs the resources it needs, computes the host's desired state
 * and drives the programmers. It touches the dataplane only once the syncer is in sync, never
 * flushes anything on start or stop, and periodically re-reads the dataplane to repair drift.
 */
@injectable()
export class Agent {
  private readonly cache = new ResourceCache();
  private syncer: Syncer | undefined;
  private readonly stop = new AbortController();
  private inSync = false;
  private bgpDirty = true;
  private revision = 0n;
  private readonly task: SerialTask;
  private resyncTimer: TimerHandle | undefined;
  private loops: Promise<unknown>[] = [];
  private firstProgrammed: { resolve: () => void; promise: Promise<void> };
  private readonly logger: Logger;
  readonly stats: AgentStats = {
    inSync: false,
    reconciles: 0,
    reconcileFailures: 0,
    lastReconcileMs: 0,
    revision: 0n,
  };

  constructor(
    @inject(DATASTORE) private readonly store: Datastore,
    @inject(AGENT_CONFIG) readonly config: AgentConfig,
    @inject(ROUTES_PROGRAMMER) readonly routes: RoutesProgrammer,
    @inject(BIRD_CONTROLLER) readonly bird: BirdController,
    @inject(LOGGER) logger: Logger,
    @inject(CLOCK) private readonly clock: Clock,
  ) {
    this.logger = logger.child({ agent: config.hostname });
    this.task = new SerialTask(() => this.reconcile(), {
      clock,
      onError: (e, attempt) => {
        this.stats.reconcileFailures++;
        this.logger.error(
          { err: e instanceof Error ? e.message : String(e), attempt },
          'reconcile failed; retrying',
        );
      },
    });
    let resolve!: () => void;
    const promise = new Promise<void>((r) => (resolve = r));
    this.firstProgrammed = { resolve, promise };
  }

  /** The datastore prefixes the agent follows. */
  static prefixesFor(): string[] {
    return [
      prefixes.network,
      prefixes.subnet,
      prefixes.securityGroup,
      // Every host's endpoints: remote security group members live anywhere.
      prefixes.boundEndpoints,
      prefixes.host,
      prefixes.bgpConfiguration,
      prefixes.bgpPeer,
      prefixes.ipPool,
    ];
  }

  /** Starts following the datastore; resolves once the dataplane has been programmed from a complete view. */
  async start(): Promise<void> {
    this.syncer = new Syncer(this.store, {
      prefixes: Agent.prefixesFor(),
      logger: this.logger,
      clock: this.clock,
    });
    this.loops.push(this.consume(this.syncer));
    const outcome = await Promise.race([
      this.firstProgrammed.promise.then(() => 'programmed' as const),
      Promise.allSettled(this.loops).then(() => 'ended' as const),
    ]);
    if (outcome === 'ended') throw new Error('agent stopped before it was in sync');
    // Only now, with the dataplane programmed from a complete view, follow interface changes:
    // the monitor re-reads the interfaces once it listens, so nothing falls in between.
    this.loops.push(
      this.routes
        .watchLinks(
          this.stop.signal,
          () => this.task.trigger(),
          () => this.task.trigger(),
        )
        .catch((e: unknown) => {
          if (!this.stop.signal.aborted)
            this.logger.error({ err: (e as Error).message }, 'link monitor stopped');
        }),
    );
    this.scheduleResync();
    this.logger.info({ revision: String(this.revision) }, 'agent in sync and programmed');
  }

  private async consume(syncer: Syncer): Promise<void> {
    try {
      for await (const m of syncer) this.onMessage(m);
    } catch (e) {
      if (!this.stop.signal.aborted)
        this.logger.error({ err: (e as Error).message }, 'syncer ended');
      throw e;
    }
  }

  private onMessage(m: SyncerMessage): void {
    switch (m.type) {
      case 'changes': {
        const u = this.cache.apply(m.changes);
        for (const bad of u.invalid)
          this.logger.warn(
            { key: bad.key, err: bad.error.message },
            'ignoring an invalid stored value',
          );
        if ([...u.kinds].some((k) => BGP_KINDS.has(k))) this.bgpDirty = true;
        this.revision = m.revision;
        if (this.inSync && u.kinds.size) this.task.trigger();
        break;
      }
      case 'in-sync':
        this.inSync = true;
        this.stats.inSync = true;
        this.revision = m.revision;
        this.bgpDirty = true;
        this.task.trigger();
        break;
      case 'resyncing':
        // Keep the dataplane as it is; program again once the view is complete.
        this.inSync = false;
        this.stats.inSync = false;
        this.logger.warn(
          { reason: m.reason },
          'datastore view incomplete; holding the dataplane until in sync',
        );
        break;
    }
  }

  private scheduleResync(): void {
    if (this.stop.signal.aborted || this.config.resyncIntervalMs <= 0) return;
    this.resyncTimer = this.clock.setTimeout(() => {
      this.routes.invalidate();
      this.bird.invalidate();
      this.bgpDirty = true;
      this.task.trigger();
      this.scheduleResync();
    }, this.config.resyncIntervalMs);
  }

  /** The resources as calc sees them. */
  view(): ResourceView {
    const bgp = this.cache.map('BgpConfiguration');
    return {
      hosts: this.cache.map('Host'),
      bgpConfiguration: bgp.get('default'),
      bgpPeers: this.cache.map('BgpPeer'),
      ipPools: this.cache.map('IpPool'),
      networks: this.cache.map('Network'),
      subnets: this.cache.map('Subnet'),
      securityGroups: this.cache.map('SecurityGroup'),
      endpoints: this.cache.map('Endpoint'),
    };
  }

  private async reconcile(): Promise<void> {
    if (!this.inSync || this.stop.signal.aborted) return;
    const t0 = performance.now();
    const view = this.view();
    const revision = this.revision;
    await this.routes.apply(computeRoutes(view, this.config.hostname));
    if (this.bgpDirty) {
      this.bgpDirty = false;
      const bgp = computeBgp(view, this.config.hostname, {
        routeProtocol: this.config.routeProtocol,
      });
      try {
        if (bgp) await this.bird.apply(bgp);
        else
          this.logger.warn(
            'no Host resource (or no IPv4 router id) for this host: BGP not configured',
          );
      } catch (e) {
        this.bgpDirty = true;
        throw e;
      }
    }
    this.stats.reconciles++;
    this.stats.lastReconcileMs = performance.now() - t0;
    this.stats.revision = revision;
    this.firstProgrammed.resolve();
  }

  /** Resolves when no reconcile is running (tests, orderly shutdown). */
  idle(): Promise<void> {
    return this.task.idle();
  }

  /** Stops following the datastore. The dataplane (routes, BIRD) is left exactly as it is. */
  async close(): Promise<void> {
    this.stop.abort();
    if (this.resyncTimer) this.clock.clearTimeout(this.resyncTimer);
    await this.syncer?.close();
    await this.task.close();
    await Promise.allSettled(this.loops);
  }
}

import { inject, injectable } from 'inversify';
import { CLOCK, LOGGER, type Clock, type Logger } from '@calyx/core';
import {
  DATASTORE,
  SyncedReconciler,
  type Datastore,
  type ReconcilerStats,
  type ResourceCache,
} from '@calyx/datastore';
import { prefixes, type Kind } from '@calyx/model';
import { PolicyCompiler, computeBgp, computeRoutes, type ResourceView } from '@calyx/calc';
import type { IptablesProgrammer } from '@calyx/dataplane-iptables';
import type { BirdController } from '@calyx/dataplane-bird';
import type { RoutesProgrammer } from '@calyx/dataplane-routes';
import {
  AGENT_CONFIG,
  BIRD_CONTROLLER,
  IPTABLES_PROGRAMMER,
  ROUTES_PROGRAMMER,
  type AgentConfig,
} from './config.js';

/** Kinds whose change can alter the BGP configuration. */
const BGP_KINDS: ReadonlySet<Kind> = new Set<Kind>([
  'Host',
  'BgpConfiguration',
  'BgpPeer',
  'IpPool',
]);

/** Kinds whose change can alter the host's filter rules. */
const POLICY_KINDS: ReadonlySet<Kind> = new Set<Kind>(['Endpoint', 'SecurityGroup', 'IpPool']);

export type AgentStats = ReconcilerStats;

/** The resources as calc sees them. */
export function viewOf(cache: ResourceCache): ResourceView {
  return {
    hosts: cache.map('Host'),
    bgpConfiguration: cache.map('BgpConfiguration').get('default'),
    bgpPeers: cache.map('BgpPeer'),
    ipPools: cache.map('IpPool'),
    networks: cache.map('Network'),
    subnets: cache.map('Subnet'),
    securityGroups: cache.map('SecurityGroup'),
    endpoints: cache.map('Endpoint'),
  };
}

/**
 * One compute host's agent: syncs the resources it needs, computes the host's desired state
 * and drives the programmers. It touches the dataplane only once the syncer is in sync, never
 * flushes anything on start or stop, and periodically re-reads the dataplane to repair drift.
 */
@injectable()
export class Agent {
  private readonly loop: SyncedReconciler;
  private readonly logger: Logger;
  private bgpDirty = true;
  private policyDirty = true;
  /** The hooks and dispatch chains have been written once. */
  private policyInPlace = false;
  private readonly policy: PolicyCompiler;
  private linkWatch: Promise<void> | undefined;

  constructor(
    @inject(DATASTORE) store: Datastore,
    @inject(AGENT_CONFIG) readonly config: AgentConfig,
    @inject(ROUTES_PROGRAMMER) readonly routes: RoutesProgrammer,
    @inject(BIRD_CONTROLLER) readonly bird: BirdController,
    @inject(IPTABLES_PROGRAMMER) readonly iptables: IptablesProgrammer,
    @inject(LOGGER) logger: Logger,
    @inject(CLOCK) clock: Clock,
  ) {
    this.logger = logger.child({ agent: config.hostname });
    this.policy = new PolicyCompiler({
      hostServices: config.hostServices,
      allowPingHost: config.allowPingHost,
    });
    this.loop = new SyncedReconciler(store, {
      prefixes: Agent.prefixesFor(),
      resyncIntervalMs: config.resyncIntervalMs,
      logger: this.logger,
      clock,
      onResync: () => {
        this.routes.invalidate();
        this.bird.invalidate();
        this.iptables.invalidate();
      },
      reconcile: (cache, what) => this.reconcile(cache, what),
    });
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

  get stats(): AgentStats {
    return this.loop.stats;
  }

  /** Starts following the datastore; resolves once the dataplane has been programmed from a complete view. */
  async start(): Promise<void> {
    await this.loop.start();
    // Only now, with the dataplane programmed from a complete view, follow interface changes:
    // the monitor re-reads the interfaces once it listens, so nothing falls in between.
    this.linkWatch = this.routes
      .watchLinks(
        this.loop.signal,
        () => this.loop.trigger(),
        () => this.loop.trigger(),
      )
      .catch((e: unknown) => {
        if (!this.loop.signal.aborted)
          this.logger.error({ err: (e as Error).message }, 'link monitor stopped');
      });
    this.logger.info({ revision: String(this.stats.revision) }, 'agent in sync and programmed');
  }

  private async reconcile(
    cache: ResourceCache,
    what: { changed: ReadonlySet<Kind>; full: boolean },
  ): Promise<void> {
    if (what.full || [...what.changed].some((k) => BGP_KINDS.has(k))) this.bgpDirty = true;
    if (what.full || [...what.changed].some((k) => POLICY_KINDS.has(k))) this.policyDirty = true;
    const view = viewOf(cache);
    const policy = async (): Promise<void> => {
      if (!this.policyDirty || !this.config.securityGroups) return;
      this.policyDirty = false;
      try {
        await this.iptables.apply(this.policy.compute(view, this.config.hostname));
        this.policyInPlace = true;
      } catch (e) {
        this.policyDirty = true;
        throw e;
      }
    };
    const routes = () => this.routes.apply(computeRoutes(view, this.config.hostname));
    // Until the hooks and dispatch chains exist, policy goes first: nothing is routed
    // unfiltered. After that an endpoint without its chains is dropped by the dispatch
    // chains anyway (fail closed), so rules and routes are written at the same time.
    if (this.policyInPlace || !this.config.securityGroups) await Promise.all([policy(), routes()]);
    else {
      await policy();
      await routes();
    }
    if (!this.bgpDirty) return;
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

  /** Resolves when no reconcile is running (tests, orderly shutdown). */
  idle(): Promise<void> {
    return this.loop.idle();
  }

  /** Stops following the datastore. The dataplane (routes, BIRD) is left exactly as it is. */
  async close(): Promise<void> {
    await this.loop.close();
    await this.linkWatch;
  }
}

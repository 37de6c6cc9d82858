import { inject, injectable } from 'inversify';
import { CLOCK, LOGGER, type Clock, type Logger } from '@calyx/core';
import {
  DATASTORE,
  StatusReporter,
  SyncedReconciler,
  type Datastore,
  type EndpointReport,
  type ReconcilerStats,
} from '@calyx/datastore';
import { prefixes, type Endpoint, type Kind } from '@calyx/model';
import {
  PolicyCompiler,
  computeBgp,
  computeRoutes,
  localEndpoints,
  viewOf,
  type DesiredRoutes,
  type ResourceView,
} from '@calyx/calc';
import type { IptablesDesired, IptablesProgrammer } from '@calyx/dataplane-iptables';
import {
  HealthServer,
  ProgramMetrics,
  livenessOf,
  readinessOf,
  type CheckResult,
} from '@calyx/telemetry';
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

/** The resources as calc sees them (re-exported: agents' users had it from here). */
export { viewOf };

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
  readonly metrics: ProgramMetrics;
  readonly status: StatusReporter;
  private health: HealthServer | undefined;
  /** Why the last routes / policy apply failed (undefined: it succeeded). */
  private routesError: string | undefined;
  private policyError: string | undefined;
  private bgpError: string | undefined;
  private lastRoutes: DesiredRoutes | undefined;
  private lastPolicy: IptablesDesired | undefined;
  private closed = false;

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
    this.metrics = new ProgramMetrics({
      labels: { host: config.hostname },
      processMetrics: config.processMetrics ?? false,
    });
    this.status = new StatusReporter(store, {
      hostname: config.hostname,
      agent: 'calyx-agent',
      ttlSeconds: config.livenessTtlSeconds,
      flushIntervalMs: config.statusFlushMs,
      clock,
      logger: this.logger,
      onError: () => this.metrics.datastoreErrors.inc({ operation: 'status' }),
    });
    this.loop = new SyncedReconciler(store, {
      prefixes: Agent.prefixesFor(),
      resyncIntervalMs: config.resyncIntervalMs,
      logger: this.logger,
      clock,
      // Operators see it in the liveness record while the agent holds its dataplane.
      onSyncLost: () => this.status.reportHost({ inSync: false }),
      onResync: () => {
        this.routes.invalidate();
        this.bird.invalidate();
        this.iptables.invalidate();
      },
      reconcile: async (cache, what) => {
        // The endpoints this run programs, as they are now: the cache moves on while it runs,
        // and an endpoint that arrives meanwhile is reported after the next run, not guessed at.
        const view = viewOf(cache);
        const endpoints = localEndpoints(view, config.hostname).map((e) => ({
          endpoint: e,
          revision: cache.modRevisionOf('Endpoint', e.id),
        }));
        try {
          await this.reconcile(view, what);
        } finally {
          this.reportStatus(endpoints);
        }
      },
    });
    this.registerGauges();
  }

  private registerGauges(): void {
    const m = this.metrics;
    m.gauge(
      'calyx_endpoints',
      'Local endpoints by reported status.',
      () =>
        Object.entries(this.status.counts()).map(([status, value]) => ({
          labels: { status },
          value,
        })),
      ['status'],
    );
    m.gauge('calyx_syncer_in_sync', '1 when the datastore view is complete.', () =>
      this.loop.stats.inSync ? 1 : 0,
    );
    m.gauge('calyx_datastore_revision', 'Datastore revision the agent has seen.', () =>
      Number(this.loop.stats.revision),
    );
    m.gauge(
      'calyx_reconcile_failures',
      'Reconciles that failed since start.',
      () => this.loop.stats.reconcileFailures,
    );
    m.gauge('calyx_routes', 'Endpoint routes (addresses) programmed.', () =>
      (this.lastRoutes?.endpoints ?? []).reduce((n, e) => n + e.addresses.length, 0),
    );
    const tables = () =>
      this.lastPolicy
        ? [...Object.values(this.lastPolicy.v4), ...Object.values(this.lastPolicy.v6)]
        : [];
    m.gauge('calyx_iptables_chains', 'Calyx iptables chains (both families).', () =>
      tables().reduce((n, t) => n + t.chains.size, 0),
    );
    m.gauge('calyx_iptables_rules', 'Rules in Calyx iptables chains (both families).', () => {
      let n = 0;
      for (const t of tables()) for (const rules of t.chains.values()) n += rules.length;
      return n;
    });
    m.gauge('calyx_ipset_members', 'Members of Calyx ipsets.', () => {
      let n = 0;
      for (const set of this.lastPolicy?.ipsets.values() ?? []) n += set.members.length;
      return n;
    });
    m.gauge(
      'calyx_bgp_sessions_up',
      'BGP sessions Established (asks BIRD at scrape time).',
      async () => {
        try {
          return (await this.bird.protocols()).filter((p) => p.established).length;
        } catch {
          return 0;
        }
      },
    );
  }

  /** `/livez`: the loop runs. */
  live(): CheckResult {
    return livenessOf(this.closed);
  }

  /** `/readyz`: in sync with the datastore, and the last programming of everything succeeded. */
  ready(): CheckResult {
    return readinessOf({
      closed: this.closed,
      inSync: this.loop.stats.inSync,
      reconciles: this.loop.stats.reconciles,
      failures: { routes: this.routesError, policy: this.policyError, bgp: this.bgpError },
    });
  }

  /**
   * Each local endpoint's status: up only when its interface exists, is up, its routes are in
   * and (with security groups) its policy is programmed; down or error with the reason otherwise.
   */
  private reportStatus(
    endpoints: readonly { endpoint: Endpoint; revision: bigint | undefined }[],
  ): void {
    const routeState = this.routes.status;
    const policyReady = !this.config.securityGroups || (this.policyInPlace && !this.policyDirty);
    const out = new Map<string, EndpointReport>();
    for (const { endpoint: e, revision } of endpoints) {
      let r: EndpointReport;
      if (!e.adminStateUp) r = { status: 'down', reason: 'administratively down' };
      else if (this.routesError) r = { status: 'error', reason: `routes: ${this.routesError}` };
      else if (this.policyError) r = { status: 'error', reason: `policy: ${this.policyError}` };
      else {
        const st = routeState.get(e.interfaceName);
        if (st === 'missing-interface')
          r = { status: 'down', reason: `interface ${e.interfaceName} does not exist` };
        else if (st === 'interface-down')
          r = { status: 'down', reason: `interface ${e.interfaceName} is down` };
        else if (st !== 'programmed') r = { status: 'down', reason: 'routes not programmed yet' };
        else if (!policyReady) r = { status: 'down', reason: 'policy not programmed yet' };
        else r = { status: 'up', reason: '' };
      }
      out.set(e.id, revision === undefined ? r : { ...r, endpointRevision: revision });
    }
    this.status.report(out, {
      inSync: this.loop.stats.inSync && !this.routesError && !this.policyError,
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
    this.health = await HealthServer.serve(this.config.health, this, this.logger);
    try {
      await this.status.start();
      if (this.closed) throw new Error('closed while starting');
      await this.loop.start();
    } catch (e) {
      await this.health?.close();
      throw e;
    }
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
    view: ResourceView,
    what: { changed: ReadonlySet<Kind>; full: boolean },
  ): Promise<void> {
    if (what.full || [...what.changed].some((k) => BGP_KINDS.has(k))) this.bgpDirty = true;
    if (what.full || [...what.changed].some((k) => POLICY_KINDS.has(k))) this.policyDirty = true;
    const policy = async (): Promise<void> => {
      if (!this.policyDirty || !this.config.securityGroups) return;
      this.policyDirty = false;
      try {
        const desired = this.policy.compute(view, this.config.hostname);
        await this.metrics.observe('iptables', () => this.iptables.apply(desired));
        this.lastPolicy = desired;
        this.policyInPlace = true;
        this.policyError = undefined;
      } catch (e) {
        this.policyDirty = true;
        this.policyError = (e as Error).message;
        throw e;
      }
    };
    const routes = async (): Promise<void> => {
      const desired = computeRoutes(view, this.config.hostname);
      try {
        await this.metrics.observe('routes', () => this.routes.apply(desired));
        this.lastRoutes = desired;
        this.routesError = undefined;
      } catch (e) {
        this.routesError = (e as Error).message;
        throw e;
      }
    };
    // Until the hooks and dispatch chains exist, policy goes first: nothing is routed
    // unfiltered. After that an endpoint without its chains is dropped by the dispatch
    // chains anyway (fail closed), so rules and routes are written at the same time.
    if (this.policyInPlace || !this.config.securityGroups) {
      // Both finish before this run ends (a failed one must not leave the other running into
      // the next run); the first failure is rethrown.
      const [p, r] = await Promise.allSettled([policy(), routes()]);
      if (p.status === 'rejected') throw p.reason;
      if (r.status === 'rejected') throw r.reason;
    } else {
      await policy();
      await routes();
    }
    if (!this.bgpDirty) return;
    this.bgpDirty = false;
    const bgp = computeBgp(view, this.config.hostname, {
      routeProtocol: this.config.routeProtocol,
    });
    try {
      if (bgp) await this.metrics.observe('bird', () => this.bird.apply(bgp));
      else
        this.logger.warn(
          'no Host resource (or no IPv4 router id) for this host: BGP not configured',
        );
      this.bgpError = undefined;
    } catch (e) {
      this.bgpDirty = true;
      this.bgpError = (e as Error).message;
      throw e;
    }
  }

  /** Resolves when no reconcile is running (tests, orderly shutdown). */
  idle(): Promise<void> {
    return this.loop.idle();
  }

  /** Stops following the datastore. The dataplane (routes, BIRD) is left exactly as it is. */
  async close(): Promise<void> {
    this.closed = true;
    await this.loop.close();
    await this.linkWatch;
    // Liveness is left to expire with its lease: a restart within the TTL never looks dead.
    await this.status.close();
    await this.health?.close();
  }

  /** Where /livez, /readyz and /metrics are served (after start), if configured. */
  get healthAddress(): { host: string; port: number } | undefined {
    return this.health?.address;
  }
}

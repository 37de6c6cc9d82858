import {
  SerialTask,
  silentLogger,
  systemClock,
  type Clock,
  type Logger,
  type TimerHandle,
} from '@calyx/core';
import { keys, prefixes, type EndpointStatus } from '@calyx/model';
import { isRefusal } from './access.js';
import { LeaseKeeper } from './lease-keeper.js';
import { ResourceClient, encodeResource } from './resource-client.js';
import type { Datastore, TxnOp } from './types.js';

/** What an agent says about one endpoint. */
export interface EndpointReport {
  status: EndpointStatus['status'];
  reason: string;
  /** The revision of the Endpoint record the report is about (see EndpointStatus). */
  endpointRevision?: bigint;
}

export interface StatusReporterOptions {
  hostname: string;
  /** Which program reports (`agent`). */
  agent?: string;
  version?: string;
  /** Liveness lease TTL: the host counts as dead this long after the agent stops. Default 10 s. */
  ttlSeconds?: number;
  /** At most one write burst per this period; changes in between are coalesced. Default 100 ms. */
  flushIntervalMs?: number;
  /** Operations per transaction. Default 64. */
  maxOpsPerTxn?: number;
  clock?: Clock;
  logger?: Logger;
  /** Called when a write fails (it is retried with backoff). */
  onError?: (e: unknown) => void;
}

const same = (a: EndpointReport | undefined, b: EndpointReport | undefined) =>
  a !== undefined &&
  b !== undefined &&
  a.status === b.status &&
  a.reason === b.reason &&
  a.endpointRevision === b.endpointRevision;

/**
 * Writes an agent's endpoint statuses and its lease-backed liveness record. Reports are
 * level-triggered: `report()` takes the whole current picture, and only what differs from what
 * is in the datastore is written (stale records of endpoints that left are deleted), in a few
 * transactions at most every `flushIntervalMs`.
 */
export class StatusReporter {
  private readonly client: ResourceClient;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly task: SerialTask;
  private readonly startedAt: string;
  private keeper: LeaseKeeper | undefined;
  private desired = new Map<string, EndpointReport>();
  private written = new Map<string, EndpointReport>();
  private host = { inSync: false };
  private hostWritten: string | undefined;
  private lastFlushMs = 0;
  private timer: TimerHandle | undefined;
  private closed = false;

  constructor(
    private readonly store: Datastore,
    private readonly opts: StatusReporterOptions,
  ) {
    this.client = new ResourceClient(store);
    this.clock = opts.clock ?? systemClock;
    this.logger = (opts.logger ?? silentLogger).child({ component: 'status' });
    this.startedAt = new Date(this.clock.now()).toISOString();
    this.task = new SerialTask(() => this.flushNow(), {
      clock: this.clock,
      retryBaseMs: 200,
      retryMaxMs: 5_000,
      onError: (e) => {
        this.opts.onError?.(e);
        // A refusal (credentials, role) needs an operator: error, not warn.
        this.logger[isRefusal(e) ? 'error' : 'warn'](
          { err: (e as Error).message },
          'status write failed; retrying',
        );
      },
    });
  }

  /**
   * Learns what statuses exist, takes the liveness lease and writes the liveness record. With
   * the datastore unreachable it does not fail: it keeps retrying in the background (with
   * backoff) and reports once it can.
   */
  async start(): Promise<void> {
    // Through the task like every flush: never two flushes (or two lease grants) at once.
    this.task.trigger();
    await this.task.idle();
  }

  private baselineLoaded = false;

  private async loadBaseline(): Promise<void> {
    const existing = await this.client.list('EndpointStatus', {
      prefix: `${prefixes.hostStatus(this.opts.hostname)}endpoint/`,
    });
    for (const { value } of existing.items)
      if (!this.written.has(value.endpointId))
        this.written.set(value.endpointId, {
          status: value.status,
          reason: value.reason,
          ...(value.endpointRevision !== undefined
            ? { endpointRevision: BigInt(value.endpointRevision) }
            : {}),
        });
    this.baselineLoaded = true;
  }

  private async takeLease(): Promise<void> {
    const keeper = new LeaseKeeper(this.store, {
      ttlSeconds: this.opts.ttlSeconds ?? 10,
      clock: this.clock,
      logger: this.logger,
    });
    await keeper.start();
    if (this.closed) {
      // Closed while the grant was in flight: this lease must not outlive us.
      await keeper.close({ revoke: true }).catch(() => undefined);
      return;
    }
    this.keeper = keeper;
    this.hostWritten = undefined;
    void keeper.lost.then((reason) => {
      if (this.closed || this.keeper !== keeper) return;
      // Expired while we were cut off (or revoked by someone): the next flush takes a new one
      // and rewrites the liveness record on it.
      this.logger.warn({ reason }, 'liveness lease lost; taking a new one');
      this.keeper = undefined;
      this.hostWritten = undefined;
      this.task.trigger();
    });
  }

  /** The whole current picture: every local endpoint's status, and whether the agent is in sync. */
  report(endpoints: ReadonlyMap<string, EndpointReport>, host: { inSync: boolean }): void {
    this.desired = new Map(endpoints);
    this.host = { ...host };
    this.schedule();
  }

  /** Only the host's side changed (the endpoints' statuses stay as last reported). */
  reportHost(host: { inSync: boolean }): void {
    this.host = { ...host };
    this.schedule();
  }

  /** Statuses as last reported, counted. */
  counts(): Record<EndpointReport['status'], number> {
    const c = { up: 0, down: 0, error: 0 };
    for (const r of this.desired.values()) c[r.status]++;
    return c;
  }

  /** What is in the datastore now (as far as this reporter wrote it). */
  get reported(): ReadonlyMap<string, EndpointReport> {
    return this.written;
  }

  private schedule(): void {
    if (this.closed || this.timer) return;
    const wait = Math.max(
      0,
      this.lastFlushMs + (this.opts.flushIntervalMs ?? 100) - this.clock.now(),
    );
    this.timer = this.clock.setTimeout(() => {
      this.timer = undefined;
      this.task.trigger();
    }, wait);
  }

  /** Writes what differs now, ignoring the rate limit (tests, shutdown). */
  async flush(): Promise<void> {
    this.task.trigger();
    await this.task.idle();
  }

  private async flushNow(): Promise<void> {
    if (this.closed) return;
    this.lastFlushMs = this.clock.now();
    if (!this.baselineLoaded) await this.loadBaseline();
    if (!this.keeper) await this.takeLease();
    const keeper = this.keeper;
    if (this.closed || !keeper) return;
    const now = new Date(this.clock.now()).toISOString();
    // One snapshot of what is reported: report() may change it while we commit.
    const desired = this.desired;
    const host = { inSync: this.host.inSync, endpoints: desired.size };
    const hostKey = JSON.stringify(host);
    const puts: [string, EndpointReport][] = [];
    for (const [id, r] of desired) if (!same(r, this.written.get(id))) puts.push([id, r]);
    const deletes = [...this.written.keys()].filter((id) => !desired.has(id));
    const max = this.opts.maxOpsPerTxn ?? 64;
    let ops: TxnOp[] = [];
    const done: Array<() => void> = [];
    const commit = async () => {
      if (ops.length === 0) return;
      // Plain puts and deletes, no compares: these records are ours alone, and a record
      // someone else already deleted must not wedge every later flush.
      await this.store.txn({ compares: [], success: ops });
      for (const f of done.splice(0)) f();
      ops = [];
    };
    for (const [id, r] of puts) {
      const v = this.client.validate('EndpointStatus', {
        endpointId: id,
        host: this.opts.hostname,
        status: r.status,
        reason: r.reason.slice(0, 1024),
        ...(r.endpointRevision !== undefined
          ? { endpointRevision: r.endpointRevision.toString() }
          : {}),
        updatedAt: now,
      });
      ops.push({
        type: 'put',
        key: keys.endpointStatus(this.opts.hostname, id),
        value: encodeResource(v),
      });
      done.push(() => this.written.set(id, r));
      if (ops.length >= max) await commit();
    }
    for (const id of deletes) {
      ops.push({ type: 'delete', key: keys.endpointStatus(this.opts.hostname, id) });
      done.push(() => this.written.delete(id));
      if (ops.length >= max) await commit();
    }
    if (hostKey !== this.hostWritten) {
      const v = this.client.validate('HostStatus', {
        host: this.opts.hostname,
        agent: this.opts.agent ?? 'agent',
        version: this.opts.version ?? '',
        startedAt: this.startedAt,
        updatedAt: now,
        inSync: host.inSync,
        endpoints: host.endpoints,
      });
      ops.push({
        type: 'put',
        key: keys.hostStatus(this.opts.hostname),
        value: encodeResource(v),
        lease: keeper.id,
      });
      // Only if that lease is still ours: a record on a lease lost meanwhile is rewritten.
      done.push(() => {
        if (this.keeper === keeper) this.hostWritten = hostKey;
      });
    }
    await commit();
    if (puts.length || deletes.length)
      this.logger.debug({ written: puts.length, deleted: deletes.length }, 'statuses written');
  }

  /**
   * Stops reporting. The liveness record is left to expire with its lease (the TTL), so an
   * agent restarted within it never looks dead; pass `revoke` to drop it at once.
   */
  async close(opts: { revoke?: boolean } = {}): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) this.clock.clearTimeout(this.timer);
    await this.task.close();
    await this.keeper?.close({ revoke: opts.revoke ?? false });
  }
}

import {
  SerialTask,
  silentLogger,
  systemClock,
  type Clock,
  type Logger,
  type TimerHandle,
} from '@calyx/core';
import { keys, prefixes, type EndpointStatus } from '@calyx/model';
import { LeaseKeeper } from './lease-keeper.js';
import { ResourceClient } from './resource-client.js';
import type { Datastore } from './types.js';

/** What an agent says about one endpoint. */
export interface EndpointReport {
  status: EndpointStatus['status'];
  reason: string;
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
  a !== undefined && b !== undefined && a.status === b.status && a.reason === b.reason;

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
        this.logger.warn({ err: (e as Error).message }, 'status write failed; retrying');
      },
    });
  }

  /**
   * Learns what statuses exist, takes the liveness lease and writes the liveness record. With
   * the datastore unreachable it does not fail: it keeps retrying in the background (with
   * backoff) and reports once it can.
   */
  async start(): Promise<void> {
    try {
      await this.flushNow();
    } catch (e) {
      this.opts.onError?.(e);
      this.logger.warn({ err: (e as Error).message }, 'status not written yet; retrying');
      this.task.trigger();
    }
  }

  private baselineLoaded = false;

  private async loadBaseline(): Promise<void> {
    const existing = await this.client.list('EndpointStatus', {
      prefix: `${prefixes.hostStatus(this.opts.hostname)}endpoint/`,
    });
    for (const { value } of existing.items)
      if (!this.written.has(value.endpointId))
        this.written.set(value.endpointId, { status: value.status, reason: value.reason });
    this.baselineLoaded = true;
  }

  private async takeLease(): Promise<void> {
    const keeper = new LeaseKeeper(this.store, {
      ttlSeconds: this.opts.ttlSeconds ?? 10,
      clock: this.clock,
      logger: this.logger,
    });
    await keeper.start();
    this.keeper = keeper;
    this.hostWritten = undefined;
    void keeper.lost.then((reason) => {
      if (this.closed || this.keeper !== keeper) return;
      // Expired while we were cut off (or revoked by someone): come back with a new lease.
      this.logger.warn({ reason }, 'liveness lease lost; taking a new one');
      void this.takeLease().then(
        () => this.schedule(),
        (e: unknown) => {
          this.opts.onError?.(e);
          this.keeper = undefined;
          this.schedule();
        },
      );
    });
  }

  /** The whole current picture: every local endpoint's status, and whether the agent is in sync. */
  report(endpoints: ReadonlyMap<string, EndpointReport>, host: { inSync: boolean }): void {
    this.desired = new Map(endpoints);
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

  private hostRecord(): string {
    return JSON.stringify([this.host.inSync, this.desired.size]);
  }

  private async flushNow(): Promise<void> {
    if (this.closed) return;
    this.lastFlushMs = this.clock.now();
    if (!this.baselineLoaded) await this.loadBaseline();
    if (!this.keeper) await this.takeLease();
    const now = new Date(this.clock.now()).toISOString();
    const puts: [string, EndpointReport][] = [];
    for (const [id, r] of this.desired) if (!same(r, this.written.get(id))) puts.push([id, r]);
    const deletes = [...this.written.keys()].filter((id) => !this.desired.has(id));
    const host = this.hostRecord();
    const max = this.opts.maxOpsPerTxn ?? 64;
    let txn = this.client.txn();
    let n = 0;
    const done: Array<() => void> = [];
    const commit = async () => {
      if (n === 0) return;
      await txn.commit();
      for (const f of done.splice(0)) f();
      txn = this.client.txn();
      n = 0;
    };
    for (const [id, r] of puts) {
      txn.put('EndpointStatus', {
        endpointId: id,
        host: this.opts.hostname,
        status: r.status,
        reason: r.reason.slice(0, 1024),
        updatedAt: now,
      });
      done.push(() => this.written.set(id, r));
      if (++n >= max) await commit();
    }
    for (const id of deletes) {
      txn.delete('EndpointStatus', keys.endpointStatus(this.opts.hostname, id));
      done.push(() => this.written.delete(id));
      if (++n >= max) await commit();
    }
    if (host !== this.hostWritten) {
      txn.put(
        'HostStatus',
        {
          host: this.opts.hostname,
          agent: this.opts.agent ?? 'agent',
          version: this.opts.version ?? '',
          startedAt: this.startedAt,
          updatedAt: now,
          inSync: this.host.inSync,
          endpoints: this.desired.size,
        },
        { lease: this.keeper!.id },
      );
      done.push(() => (this.hostWritten = host));
      n++;
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

import {
  deferred,
  silentLogger,
  systemClock,
  type Clock,
  type Logger,
  type TimerHandle,
} from '@calyx/core';
import { isRefusal } from './access.js';
import { LeaseNotFoundError } from './errors.js';
import type { Datastore, LeaseId } from './types.js';

export interface LeaseKeeperOptions {
  ttlSeconds: number;
  clock?: Clock;
  logger?: Logger;
  /** Keepalive period; default a third of the TTL. */
  intervalMs?: number;
}

/**
 * Holds one lease alive. `lost` resolves when the lease is gone (expired, revoked, or not
 * refreshed in time); `isFresh(margin)` tells whether it certainly still exists.
 */
export class LeaseKeeper {
  private leaseId: LeaseId | undefined;
  private timer: TimerHandle | undefined;
  private lastRefreshMs = 0;
  private ttlMs = 0;
  private closed = false;
  private readonly lostSignal = deferred<string>();
  private isLost = false;
  private readonly clock: Clock;
  private readonly logger: Logger;

  constructor(
    private readonly store: Datastore,
    private readonly opts: LeaseKeeperOptions,
  ) {
    this.clock = opts.clock ?? systemClock;
    this.logger = opts.logger ?? silentLogger;
  }

  get id(): LeaseId {
    if (this.leaseId === undefined) throw new Error('LeaseKeeper not started');
    return this.leaseId;
  }

  /** Resolves with the reason once the lease is lost. */
  get lost(): Promise<string> {
    return this.lostSignal.promise;
  }

  async start(): Promise<LeaseId> {
    const before = this.clock.now();
    const lease = await this.store.grantLease(this.opts.ttlSeconds);
    this.leaseId = lease.id;
    this.ttlMs = lease.ttlSeconds * 1000;
    // Count the TTL from when we asked: the server may have started it then.
    this.lastRefreshMs = before;
    this.schedule();
    return lease.id;
  }

  /** True when the lease is known to outlive `marginMs` from now. */
  isFresh(marginMs = 0): boolean {
    return (
      !this.isLost && !this.closed && this.clock.now() + marginMs < this.lastRefreshMs + this.ttlMs
    );
  }

  private schedule(): void {
    if (this.closed || this.isLost) return;
    const interval = this.opts.intervalMs ?? Math.max(100, Math.floor(this.ttlMs / 3));
    this.timer = this.clock.setTimeout(() => void this.refresh(), interval);
  }

  private markLost(reason: string): void {
    if (this.isLost) return;
    this.isLost = true;
    if (reason === 'closed') this.logger.debug({ lease: String(this.leaseId) }, 'lease released');
    else this.logger.warn({ lease: String(this.leaseId), reason }, 'lease lost');
    this.lostSignal.resolve(reason);
  }

  private async refresh(): Promise<void> {
    if (this.closed || this.leaseId === undefined) return;
    const before = this.clock.now();
    try {
      const remaining = await this.store.keepAliveLease(this.leaseId);
      if (remaining <= 0) {
        this.markLost('expired');
        return;
      }
      this.lastRefreshMs = before;
      this.ttlMs = remaining * 1000;
    } catch (e) {
      if (e instanceof LeaseNotFoundError) {
        this.markLost('expired');
        return;
      }
      this.logger[isRefusal(e) ? 'error' : 'warn'](
        { err: e instanceof Error ? e.message : String(e) },
        'lease keepalive failed; retrying',
      );
      if (this.clock.now() >= this.lastRefreshMs + this.ttlMs) {
        this.markLost('not refreshed within its TTL');
        return;
      }
    }
    this.schedule();
  }

  /** Stops refreshing; with `revoke` (default) deletes the lease and its keys now. */
  async close(opts: { revoke?: boolean } = {}): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) this.clock.clearTimeout(this.timer);
    if ((opts.revoke ?? true) && this.leaseId !== undefined && !this.isLost) {
      try {
        await this.store.revokeLease(this.leaseId);
      } catch (e) {
        if (!(e instanceof LeaseNotFoundError)) throw e;
      }
    }
    this.markLost('closed');
  }
}

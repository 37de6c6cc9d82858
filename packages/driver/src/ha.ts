import {
  backoffDelay,
  deferred,
  silentLogger,
  sleep,
  type Clock,
  type Deferred,
  type Logger,
} from '@calyx/core';
import {
  FencedDatastore,
  LeaderElection,
  NotLeaderError,
  type Datastore,
  type Leadership,
} from '@calyx/datastore';
import { keys } from '@calyx/model';
import { CalyxDriver, type DriverOptions } from './driver.js';

export interface HaDriverOptions extends DriverOptions {
  /** This instance's name, shown to the others while it leads. */
  instanceId: string;
  /**
   * A dead active instance is replaced within this long. Default 5 s. The lease is granted
   * for a second less: the store notices an expired lease up to ~0.5 s late (etcd's lessor
   * checks twice a second), and a standby needs a moment to win.
   */
  takeoverSeconds?: number;
  /** Election name (`/calyx/v1/leader/<name>`). Default `driver`. */
  election?: string;
  clock?: Clock;
  /** Told when this instance becomes active or stands by. */
  onChange?: (state: 'active' | 'standby', leader: string | undefined) => void;
}

/**
 * Driver high availability: run one per orchestrator process; exactly one is active. The
 * active instance writes through a FencedDatastore, so even a paused or partitioned former
 * leader cannot land a write once another has been elected; it also stops early when its
 * lease is no longer certainly fresh. A standby answers `driver()` with NotLeaderError naming
 * the leader, so the caller can redirect.
 */
export class HaDriver {
  private readonly election: LeaderElection;
  private readonly logger: Logger;
  private readonly ac = new AbortController();
  private current: { driver: CalyxDriver; leadership: Leadership } | undefined;
  private waiters: Deferred<CalyxDriver>[] = [];
  private loop: Promise<void> | undefined;
  private readonly key: string;

  constructor(
    private readonly store: Datastore,
    private readonly opts: HaDriverOptions,
  ) {
    this.key = keys.leader(opts.election ?? 'driver');
    this.logger = (opts.logger ?? silentLogger).child({
      component: 'ha-driver',
      instance: opts.instanceId,
    });
    this.election = new LeaderElection(store, {
      key: this.key,
      id: opts.instanceId,
      ttlSeconds: Math.max(2, (opts.takeoverSeconds ?? 5) - 1),
      logger: this.logger,
      ...(opts.clock ? { clock: opts.clock } : {}),
    });
  }

  /** Starts campaigning in the background. */
  start(): void {
    this.loop ??= this.run().catch((e: unknown) => {
      if (!this.ac.signal.aborted)
        this.logger.error({ err: (e as Error).message }, 'election stopped');
    });
  }

  private async run(): Promise<void> {
    for (let attempt = 0; !this.ac.signal.aborted;) {
      let leadership: Leadership;
      try {
        leadership = await this.election.campaign(this.ac.signal);
        attempt = 0;
      } catch (e) {
        if (this.ac.signal.aborted) return;
        // The datastore is unreachable for now: campaign again shortly.
        const delay = backoffDelay(attempt++, { baseMs: 100, maxMs: 2000 });
        this.logger.warn({ err: (e as Error).message, retryInMs: delay }, 'campaign failed');
        await sleep(delay, { signal: this.ac.signal }).catch(() => undefined);
        continue;
      }
      const driver = new CalyxDriver(new FencedDatastore(this.store, leadership.fence), {
        ...(this.opts.logger ? { logger: this.opts.logger } : {}),
        ...(this.opts.maxAttempts ? { maxAttempts: this.opts.maxAttempts } : {}),
        ...(this.opts.requireLiveAgent !== undefined
          ? { requireLiveAgent: this.opts.requireLiveAgent }
          : {}),
      });
      this.current = { driver, leadership };
      this.logger.info({ since: String(leadership.since) }, 'active');
      this.opts.onChange?.('active', this.opts.instanceId);
      for (const w of this.waiters.splice(0)) w.resolve(driver);
      const reason = await Promise.race([
        leadership.lost,
        new Promise<string>((r) =>
          this.ac.signal.addEventListener('abort', () => r('closed'), { once: true }),
        ),
      ]);
      this.current = undefined;
      this.logger.warn({ reason }, 'standing by');
      this.opts.onChange?.('standby', undefined);
    }
  }

  /** Whether this instance is the active one right now. */
  get isActive(): boolean {
    return this.current !== undefined && this.current.leadership.isFresh();
  }

  /** The revision at which this instance's current term began. */
  get activeSince(): bigint | undefined {
    return this.current?.leadership.since;
  }

  /** The active driver; NotLeaderError naming the leader when this instance stands by. */
  async driver(): Promise<CalyxDriver> {
    if (this.current) return this.current.driver;
    throw new NotLeaderError(this.key, await this.election.leader());
  }

  /** Resolves with the driver once this instance is active. */
  whenActive(): Promise<CalyxDriver> {
    if (this.current) return Promise.resolve(this.current.driver);
    const d = deferred<CalyxDriver>();
    this.waiters.push(d);
    return d.promise;
  }

  /** The active instance's id, as the datastore says. */
  leader(): Promise<string | undefined> {
    return this.election.leader();
  }

  /** Stops campaigning; an active instance resigns, so a standby takes over at once. */
  async close(): Promise<void> {
    this.ac.abort();
    const current = this.current;
    this.current = undefined;
    await current?.leadership.resign().catch(() => undefined);
    await this.loop;
    for (const w of this.waiters.splice(0)) w.reject(new NotLeaderError(this.key, undefined));
  }
}

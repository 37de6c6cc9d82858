import {
  SerialTask,
  silentLogger,
  systemClock,
  type Clock,
  type Logger,
  type TimerHandle,
} from '@calyx/core';
import type { Kind } from '@calyx/model';
import { ResourceCache } from './resource-cache.js';
import { Syncer } from './syncer.js';
import type { Datastore, Revision } from './types.js';

export interface SyncedReconcilerOptions {
  prefixes: readonly string[];
  /**
   * Computes and applies desired state from the cache. Never runs before the first in-sync.
   * `full`: after (re)sync or on the periodic resync — everything may have changed.
   */
  reconcile(
    cache: ResourceCache,
    what: { changed: ReadonlySet<Kind>; full: boolean; revision: Revision },
  ): Promise<void>;
  /** Called on the periodic resync, before the reconcile it triggers (forget cached dataplane state). */
  onResync?(): void;
  /** Called when the view stops being complete (the dataplane is held until it is again). */
  onSyncLost?(reason: string): void;
  /** Re-read the dataplane this often (ms); 0 disables. */
  resyncIntervalMs: number;
  logger?: Logger;
  clock?: Clock;
}

export interface ReconcilerStats {
  inSync: boolean;
  reconciles: number;
  reconcileFailures: number;
  lastReconcileMs: number;
  revision: Revision;
}

/**
 * The loop every Calyx agent runs: follow the datastore with a Syncer into a ResourceCache,
 * and reconcile — one run at a time, bursts coalesced, failures retried with backoff — only
 * while the view is complete. A periodic resync lets the reconcile repair drift.
 */
export class SyncedReconciler {
  readonly cache = new ResourceCache();
  readonly stats: ReconcilerStats = {
    inSync: false,
    reconciles: 0,
    reconcileFailures: 0,
    lastReconcileMs: 0,
    revision: 0n,
  };
  private syncer: Syncer | undefined;
  private readonly stop = new AbortController();
  private readonly task: SerialTask;
  private readonly logger: Logger;
  private readonly clock: Clock;
  private changed = new Set<Kind>();
  private full = true;
  private revision: Revision = 0n;
  private resyncTimer: TimerHandle | undefined;
  private consuming: Promise<void> | undefined;
  private readonly first: { promise: Promise<void>; resolve: () => void };

  constructor(
    private readonly store: Datastore,
    private readonly opts: SyncedReconcilerOptions,
  ) {
    this.logger = opts.logger ?? silentLogger;
    this.clock = opts.clock ?? systemClock;
    this.task = new SerialTask(() => this.run(), {
      clock: this.clock,
      onError: (e, attempt) => {
        this.stats.reconcileFailures++;
        this.logger.error(
          { err: e instanceof Error ? e.message : String(e), attempt },
          'reconcile failed; retrying',
        );
      },
    });
    let resolve!: () => void;
    this.first = { promise: new Promise<void>((r) => (resolve = r)), resolve };
  }

  get signal(): AbortSignal {
    return this.stop.signal;
  }

  /** Starts; resolves after the first successful reconcile from a complete view. */
  async start(): Promise<void> {
    if (this.stop.signal.aborted) throw new Error('closed before it started');
    this.syncer = new Syncer(this.store, {
      prefixes: this.opts.prefixes,
      logger: this.logger,
      clock: this.clock,
    });
    this.consuming = this.consume(this.syncer);
    const outcome = await Promise.race([
      this.first.promise.then(() => 'ready' as const),
      this.consuming.then(
        () => 'ended' as const,
        () => 'ended' as const,
      ),
    ]);
    if (outcome === 'ended') throw new Error('stopped before the first reconcile');
    this.scheduleResync();
  }

  /** Runs a reconcile soon (coalesced with any other request). */
  trigger(): void {
    if (this.stats.inSync) this.task.trigger();
  }

  private async consume(syncer: Syncer): Promise<void> {
    try {
      for await (const m of syncer) {
        if (m.type === 'changes') {
          const u = this.cache.apply(m.changes);
          for (const bad of u.invalid)
            this.logger.warn(
              { key: bad.key, err: bad.error.message },
              'ignoring an invalid stored value',
            );
          for (const k of u.kinds) this.changed.add(k);
          this.revision = m.revision;
          if (this.stats.inSync && u.kinds.size) this.task.trigger();
        } else if (m.type === 'in-sync') {
          this.stats.inSync = true;
          this.revision = m.revision;
          this.full = true;
          this.task.trigger();
        } else {
          // Keep the dataplane as it is; reconcile again once the view is complete.
          const was = this.stats.inSync;
          this.stats.inSync = false;
          if (was) this.opts.onSyncLost?.(m.reason);
          this.logger.warn(
            { reason: m.reason },
            'datastore view incomplete; holding the dataplane until in sync',
          );
        }
      }
    } catch (e) {
      if (!this.stop.signal.aborted)
        this.logger.error({ err: (e as Error).message }, 'syncer ended');
      throw e;
    }
  }

  private scheduleResync(): void {
    if (this.stop.signal.aborted || this.opts.resyncIntervalMs <= 0) return;
    this.resyncTimer = this.clock.setTimeout(() => {
      this.opts.onResync?.();
      this.full = true;
      this.task.trigger();
      this.scheduleResync();
    }, this.opts.resyncIntervalMs);
  }

  private async run(): Promise<void> {
    if (!this.stats.inSync || this.stop.signal.aborted) return;
    const t0 = performance.now();
    const changed = this.changed;
    const full = this.full;
    this.changed = new Set();
    this.full = false;
    const revision = this.revision;
    try {
      await this.opts.reconcile(this.cache, { changed, full, revision });
    } catch (e) {
      for (const k of changed) this.changed.add(k);
      this.full ||= full;
      throw e;
    }
    this.stats.reconciles++;
    this.stats.lastReconcileMs = performance.now() - t0;
    this.stats.revision = revision;
    this.first.resolve();
  }

  /** Resolves when no reconcile is running. */
  idle(): Promise<void> {
    return this.task.idle();
  }

  async close(): Promise<void> {
    this.stop.abort();
    if (this.resyncTimer) this.clock.clearTimeout(this.resyncTimer);
    await this.syncer?.close();
    await this.task.close();
    await this.consuming?.catch(() => undefined);
  }
}

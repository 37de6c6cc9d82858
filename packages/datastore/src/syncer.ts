import {
  AsyncQueue,
  backoffDelay,
  silentLogger,
  sleep,
  systemClock,
  type Clock,
  type Logger,
} from '@calyx/core';
import { isRefusal } from './access.js';
import { ClosedError, UnavailableError } from './errors.js';
import type { Datastore, KeyValue, Revision, WatchMessage } from './types.js';
import { validatePrefix } from './validate.js';

export type SyncerChange =
  | { type: 'put'; key: string; kv: KeyValue }
  | { type: 'delete'; key: string; prev: KeyValue | undefined };

export type SyncerMessage =
  /** Changes to apply, in order. After a resync: exactly the differences from what was sent. */
  | { type: 'changes'; changes: SyncerChange[]; revision: Revision }
  /** Everything up to `revision` has been delivered. */
  | { type: 'in-sync'; revision: Revision; resyncs: number }
  /** The watch lost its history or connection; a diff and a new in-sync follow. */
  | { type: 'resyncing'; reason: string };

export interface SyncerOptions {
  prefixes: readonly string[];
  logger?: Logger;
  clock?: Clock;
  /** Retry backoff after errors. */
  retryBaseMs?: number;
  retryMaxMs?: number;
}

/**
 * Lists `prefixes` at one revision, then watches them from that revision + 1. When history
 * is compacted or a watch fails, it re-lists and emits exactly the differences from what it
 * had emitted (no duplicate, no missed change), then signals in-sync again.
 *
 * Iterate it once; `close()` ends the iteration.
 */
export class Syncer implements AsyncIterable<SyncerMessage> {
  private readonly cache = new Map<string, KeyValue>();
  private readonly out = new AsyncQueue<SyncerMessage>();
  private readonly stop = new AbortController();
  private readonly logger: Logger;
  private readonly clock: Clock;
  private running: Promise<void> | undefined;
  private synced = false;
  private resyncs = 0;
  private lastRevision: Revision = 0n;

  constructor(
    private readonly store: Datastore,
    private readonly opts: SyncerOptions,
  ) {
    for (const p of opts.prefixes) validatePrefix(p);
    if (opts.prefixes.length === 0) throw new TypeError('Syncer needs at least one prefix');
    this.logger = opts.logger ?? silentLogger;
    this.clock = opts.clock ?? systemClock;
  }

  /** The state delivered so far, by key. */
  get state(): ReadonlyMap<string, KeyValue> {
    return this.cache;
  }

  get inSync(): boolean {
    return this.synced;
  }

  get revision(): Revision {
    return this.lastRevision;
  }

  /** Starts syncing (iterating starts it too). */
  start(): void {
    this.running ??= this.run().catch((e: unknown) => this.out.fail(e));
  }

  [Symbol.asyncIterator](): AsyncIterator<SyncerMessage> {
    this.start();
    return this.out[Symbol.asyncIterator]();
  }

  async close(): Promise<void> {
    this.stop.abort();
    this.out.end();
    await this.running;
  }

  private get closed(): boolean {
    return this.stop.signal.aborted;
  }

  private async run(): Promise<void> {
    let attempt = 0;
    while (!this.closed) {
      try {
        const revision = await this.resync();
        attempt = 0;
        const reason = await this.follow(revision + 1n);
        if (this.closed) return;
        this.markResyncing(reason);
      } catch (e) {
        if (this.closed) return;
        if (e instanceof ClosedError) throw e;
        const delay = backoffDelay(attempt++, {
          baseMs: this.opts.retryBaseMs ?? 100,
          maxMs: this.opts.retryMaxMs ?? 5_000,
        });
        // A refusal (credentials, role) needs an operator; it is retried all the same, since
        // the fix is made on the datastore's side.
        const refused = isRefusal(e);
        this.logger[refused ? 'error' : 'warn'](
          { err: e instanceof Error ? e.message : String(e), retryInMs: delay },
          refused
            ? 'syncer: the datastore refuses access, will retry'
            : 'syncer: datastore error, will re-list',
        );
        this.markResyncing(e instanceof Error ? e.message : String(e));
        try {
          await sleep(delay, { signal: this.stop.signal, clock: this.clock });
        } catch {
          return;
        }
      }
    }
  }

  private markResyncing(reason: string): void {
    if (this.synced) {
      this.synced = false;
      this.resyncs++;
      this.out.push({ type: 'resyncing', reason });
    }
  }

  /** Lists every prefix at one revision and emits the differences from the cache. */
  private async resync(): Promise<Revision> {
    const snapshot = new Map<string, KeyValue>();
    let revision: Revision | undefined;
    for (const prefix of this.opts.prefixes) {
      const r = await this.store.list(prefix, revision === undefined ? {} : { revision });
      revision ??= r.revision;
      for (const kv of r.items) snapshot.set(kv.key, kv);
    }
    if (this.closed || revision === undefined) return revision ?? 0n;
    const changes: SyncerChange[] = [];
    for (const [key, prev] of this.cache) {
      if (!snapshot.has(key)) {
        changes.push({ type: 'delete', key, prev });
        this.cache.delete(key);
      }
    }
    for (const [key, kv] of snapshot) {
      const had = this.cache.get(key);
      if (!had || had.modRevision !== kv.modRevision) {
        changes.push({ type: 'put', key, kv });
        this.cache.set(key, kv);
      }
    }
    this.lastRevision = revision;
    if (changes.length) this.out.push({ type: 'changes', changes, revision });
    this.synced = true;
    this.out.push({ type: 'in-sync', revision, resyncs: this.resyncs });
    return revision;
  }

  /** Watches every prefix; returns why it stopped (resync needed). Throws on watch errors. */
  private async follow(fromRevision: Revision): Promise<string> {
    const ac = new AbortController();
    const onStop = (): void => ac.abort();
    this.stop.signal.addEventListener('abort', onStop, { once: true });
    let pending: SyncerChange[] = [];
    let pendingRevision: Revision = 0n;
    let flushQueued = false;
    const flush = (): void => {
      flushQueued = false;
      if (pending.length === 0) return;
      this.lastRevision = pendingRevision > this.lastRevision ? pendingRevision : this.lastRevision;
      this.out.push({ type: 'changes', changes: pending, revision: this.lastRevision });
      pending = [];
    };
    const apply = (m: WatchMessage): void => {
      if (m.type === 'resync') return;
      if (m.type === 'put') {
        const had = this.cache.get(m.kv.key);
        if (had && had.modRevision >= m.kv.modRevision) return; // already delivered
        this.cache.set(m.kv.key, m.kv);
        pending.push({ type: 'put', key: m.kv.key, kv: m.kv });
        if (m.kv.modRevision > pendingRevision) pendingRevision = m.kv.modRevision;
      } else {
        const had = this.cache.get(m.key);
        if (!had || had.modRevision >= m.revision) return;
        this.cache.delete(m.key);
        pending.push({ type: 'delete', key: m.key, prev: had });
        if (m.revision > pendingRevision) pendingRevision = m.revision;
      }
      if (!flushQueued) {
        flushQueued = true;
        // Coalesce a burst of events into one message.
        queueMicrotask(flush);
      }
    };
    try {
      const watchers = this.opts.prefixes.map(async (prefix) => {
        for await (const m of this.store.watch(prefix, { fromRevision, signal: ac.signal })) {
          if (m.type === 'resync')
            return `history compacted at ${m.compactRevision} (watching ${prefix} from ${fromRevision})`;
          apply(m);
        }
        if (ac.signal.aborted) return 'stopped';
        throw new UnavailableError(`watch of ${prefix} ended unexpectedly`);
      });
      // The losers of the race end when aborted below; their outcome no longer matters.
      for (const w of watchers) w.catch(() => undefined);
      const reason = await Promise.race(watchers);
      flush();
      return reason;
    } finally {
      flush();
      ac.abort();
      this.stop.signal.removeEventListener('abort', onStop);
    }
  }
}

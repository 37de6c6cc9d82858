import { AsyncQueue, systemClock, type Clock, type TimerHandle } from '@calyx/core';
import {
  AlreadyExistsError,
  CompactedError,
  ConflictError,
  FutureRevisionError,
  InvalidArgumentError,
  LeaseNotFoundError,
  NotFoundError,
  type Compare,
  type KeyValue,
  type LeaseId,
  type Lease,
  type Revision,
  type TxnOp,
  type TxnOpResult,
  type TxnRequest,
  type TxnResult,
  type WatchEvent,
  type WatchMessage,
} from '@calyx/datastore';
import { SortedKeys } from './sorted-keys.js';

export interface MemoryEngineOptions {
  clock?: Clock;
  /**
   * Keep at most this many revisions of history (older ones are compacted automatically,
   * like etcd's revision auto-compaction). Default 100,000; 0 keeps everything.
   */
  retainRevisions?: number;
}

interface LeaseState {
  id: LeaseId;
  ttlMs: number;
  expiresAt: number;
  keys: Set<string>;
  timer: TimerHandle | undefined;
}

interface Subscriber {
  prefix: string;
  prevKv: boolean;
  queue: AsyncQueue<WatchMessage>;
}

/** One change of a key: its value from `rev` on (null = deleted). */
interface HistoryEntry {
  rev: Revision;
  kv: KeyValue | null;
}

/**
 * The MVCC store shared by every MemoryDatastore handle connected to it. Every mutation is
 * synchronous, so a transaction is atomic by construction; watchers are fed eagerly in
 * revision order.
 */
export class MemoryEngine {
  private rev: Revision = 1n;
  private compactRev: Revision = 0n;
  private readonly current = new Map<string, KeyValue>();
  /** Every key with history still retained, for reads at past revisions. */
  private readonly history = new Map<string, HistoryEntry[]>();
  private readonly sorted = new SortedKeys();
  private log: WatchEvent[] = [];
  private readonly subscribers = new Set<Subscriber>();
  private readonly leases = new Map<LeaseId, LeaseState>();
  private nextLease: LeaseId = 0x1000n;
  private readonly clock: Clock;
  private readonly retain: bigint;
  private handles = 0;
  disposed = false;

  constructor(opts: MemoryEngineOptions = {}) {
    this.clock = opts.clock ?? systemClock;
    this.retain = BigInt(opts.retainRevisions ?? 100_000);
  }

  attach(): void {
    this.handles++;
  }

  /** When the last handle detaches, lease timers stop: nothing keeps running. */
  detach(): void {
    this.handles--;
    if (this.handles <= 0) {
      this.disposed = true;
      for (const l of this.leases.values()) if (l.timer) this.clock.clearTimeout(l.timer);
      for (const s of this.subscribers) s.queue.end();
      this.subscribers.clear();
    }
  }

  get revision(): Revision {
    return this.rev;
  }

  private checkReadRevision(revision: Revision | undefined): Revision {
    if (revision === undefined || revision === 0n) return this.rev;
    if (revision > this.rev) throw new FutureRevisionError(revision, this.rev);
    if (revision < this.compactRev) throw new CompactedError(revision, this.compactRev);
    return revision;
  }

  private at(key: string, revision: Revision): KeyValue | undefined {
    if (revision === this.rev) return this.current.get(key);
    const h = this.history.get(key);
    if (!h) return undefined;
    // Last entry with rev <= revision.
    let lo = 0;
    let hi = h.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (h[mid]!.rev <= revision) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found < 0 ? undefined : (h[found]!.kv ?? undefined);
  }

  get(key: string, revision?: Revision): KeyValue | undefined {
    return this.at(key, this.checkReadRevision(revision));
  }

  list(prefix: string, revision?: Revision): { items: KeyValue[]; revision: Revision } {
    const rev = this.checkReadRevision(revision);
    const items: KeyValue[] = [];
    if (rev === this.rev) {
      this.sorted.forEachWithPrefix(prefix, (k) => {
        const kv = this.current.get(k);
        if (kv) items.push(kv);
      });
    } else {
      this.sorted.forEachWithPrefix(prefix, (k) => {
        const kv = this.at(k, rev);
        if (kv) items.push(kv);
      });
    }
    return { items, revision: rev };
  }

  private holds(c: Compare): boolean {
    const kv = this.current.get(c.key);
    if (c.target === 'exists') return (kv !== undefined) === c.value;
    if (c.target === 'value') {
      if (!kv) return false;
      return c.op === '=' ? kv.value === c.value : kv.value !== c.value;
    }
    const actual = kv ? kv[c.target] : 0n;
    switch (c.op) {
      case '=':
        return actual === c.value;
      case '!=':
        return actual !== c.value;
      case '<':
        return actual < c.value;
      case '>':
        return actual > c.value;
    }
  }

  private checkLease(lease: LeaseId | undefined): void {
    if (lease !== undefined && lease !== 0n && !this.leases.has(lease))
      throw new LeaseNotFoundError(lease);
  }

  // --- mutation primitives: callers bump `rev` once per transaction, then call these ---

  private record(key: string, kv: KeyValue | null): void {
    let h = this.history.get(key);
    if (!h) {
      h = [];
      this.history.set(key, h);
      this.sorted.add(key);
    }
    h.push({ rev: this.rev, kv });
  }

  private writeKey(key: string, value: string, lease: LeaseId | undefined): KeyValue {
    const prev = this.current.get(key);
    const leaseId = lease !== undefined && lease !== 0n ? lease : null;
    const kv: KeyValue = {
      key,
      value,
      createRevision: prev ? prev.createRevision : this.rev,
      modRevision: this.rev,
      version: prev ? prev.version + 1n : 1n,
      lease: leaseId,
    };
    if (prev?.lease != null && prev.lease !== leaseId)
      this.leases.get(prev.lease)?.keys.delete(key);
    if (leaseId !== null) this.leases.get(leaseId)!.keys.add(key);
    this.current.set(key, kv);
    this.record(key, kv);
    this.emit({ type: 'put', kv, prev });
    return kv;
  }

  private deleteKey(key: string): KeyValue | undefined {
    const prev = this.current.get(key);
    if (!prev) return undefined;
    if (prev.lease !== null) this.leases.get(prev.lease)?.keys.delete(key);
    this.current.delete(key);
    this.record(key, null);
    this.emit({ type: 'delete', key, revision: this.rev, prev });
    return prev;
  }

  private emit(e: WatchEvent): void {
    this.log.push(e);
    const key = e.type === 'put' ? e.kv.key : e.key;
    for (const s of this.subscribers) {
      if (key.startsWith(s.prefix)) s.queue.push(s.prevKv ? e : { ...e, prev: undefined });
    }
  }

  private afterCommit(): void {
    if (this.retain > 0n && this.rev - this.compactRev > this.retain * 2n)
      this.compact(this.rev - this.retain);
  }

  // --- operations ---

  create(key: string, value: string, lease?: LeaseId): KeyValue {
    if (this.current.has(key)) throw new AlreadyExistsError(key);
    this.checkLease(lease);
    this.rev++;
    const kv = this.writeKey(key, value, lease);
    this.afterCommit();
    return kv;
  }

  update(key: string, value: string, expected: Revision | undefined, lease?: LeaseId): KeyValue {
    const cur = this.current.get(key);
    if (!cur) throw new NotFoundError(key);
    if (expected !== undefined && cur.modRevision !== expected)
      throw new ConflictError(key, expected, cur.modRevision);
    this.checkLease(lease);
    this.rev++;
    const kv = this.writeKey(key, value, lease);
    this.afterCommit();
    return kv;
  }

  put(key: string, value: string, lease?: LeaseId): KeyValue {
    this.checkLease(lease);
    this.rev++;
    const kv = this.writeKey(key, value, lease);
    this.afterCommit();
    return kv;
  }

  delete(key: string, expected: Revision | undefined): KeyValue {
    const cur = this.current.get(key);
    if (!cur) throw new NotFoundError(key);
    if (expected !== undefined && cur.modRevision !== expected)
      throw new ConflictError(key, expected, cur.modRevision);
    this.rev++;
    const prev = this.deleteKey(key)!;
    this.afterCommit();
    return prev;
  }

  txn(req: TxnRequest): TxnResult {
    const succeeded = req.compares.every((c) => this.holds(c));
    const ops: TxnOp[] = succeeded ? req.success : (req.failure ?? []);
    for (const op of ops) if (op.type === 'put') this.checkLease(op.lease);
    const writes = ops.some(
      (op) => op.type === 'put' || (op.type === 'delete' && this.current.has(op.key)),
    );
    if (writes) this.rev++;
    const results: TxnOpResult[] = ops.map((op) => {
      switch (op.type) {
        case 'get':
          return { type: 'get', kv: this.current.get(op.key) };
        case 'put':
          return { type: 'put', kv: this.writeKey(op.key, op.value, op.lease) };
        case 'delete': {
          const prev = this.deleteKey(op.key);
          return { type: 'delete', deleted: prev !== undefined, prev };
        }
      }
    });
    if (writes) this.afterCommit();
    return { succeeded, revision: this.rev, results };
  }

  compact(revision: Revision): void {
    if (revision > this.rev) throw new FutureRevisionError(revision, this.rev);
    if (revision <= this.compactRev) return;
    this.compactRev = revision;
    // Keep, per key, the entries from `revision` on plus the one in force at `revision`.
    for (const [key, h] of this.history) {
      let keepFrom = 0;
      for (let i = 0; i < h.length; i++) if (h[i]!.rev <= revision) keepFrom = i;
      const kept = h.slice(keepFrom);
      if (kept.length === 1 && kept[0]!.kv === null && kept[0]!.rev <= revision) {
        this.history.delete(key);
        this.sorted.remove(key);
      } else if (keepFrom > 0) this.history.set(key, kept);
    }
    const first = this.firstLogIndex(revision);
    this.log = this.log.slice(first);
  }

  private firstLogIndex(revision: Revision): number {
    let lo = 0;
    let hi = this.log.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      const e = this.log[mid]!;
      const r = e.type === 'put' ? e.kv.modRevision : e.revision;
      if (r < revision) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Subscribes to `prefix` from `fromRevision` (inclusive): history first, then live events. */
  subscribe(prefix: string, fromRevision: Revision | undefined, prevKv: boolean): Subscriber {
    const queue = new AsyncQueue<WatchMessage>();
    const sub: Subscriber = { prefix, prevKv, queue };
    const from = fromRevision ?? this.rev + 1n;
    if (from < this.compactRev) {
      queue.push({ type: 'resync', reason: 'compacted', compactRevision: this.compactRev });
      queue.end();
      return sub;
    }
    for (let i = this.firstLogIndex(from); i < this.log.length; i++) {
      const e = this.log[i]!;
      const key = e.type === 'put' ? e.kv.key : e.key;
      if (key.startsWith(prefix)) queue.push(prevKv ? e : { ...e, prev: undefined });
    }
    this.subscribers.add(sub);
    return sub;
  }

  unsubscribe(sub: Subscriber): void {
    this.subscribers.delete(sub);
  }

  // --- leases ---

  grantLease(ttlSeconds: number): Lease {
    const id = this.nextLease++;
    const state: LeaseState = {
      id,
      ttlMs: ttlSeconds * 1000,
      expiresAt: 0,
      keys: new Set(),
      timer: undefined,
    };
    this.leases.set(id, state);
    this.arm(state);
    return { id, ttlSeconds };
  }

  private arm(l: LeaseState): void {
    if (l.timer) this.clock.clearTimeout(l.timer);
    l.expiresAt = this.clock.now() + l.ttlMs;
    l.timer = this.clock.setTimeout(() => this.expire(l.id), l.ttlMs);
  }

  private expire(id: LeaseId): void {
    const l = this.leases.get(id);
    if (!l || this.disposed) return;
    if (this.clock.now() < l.expiresAt) {
      this.arm(l);
      return;
    }
    this.revoke(id);
  }

  keepAlive(id: LeaseId): number {
    const l = this.leases.get(id);
    if (!l) throw new LeaseNotFoundError(id);
    this.arm(l);
    return l.ttlMs / 1000;
  }

  /** Deletes the lease and its keys in one revision. */
  revoke(id: LeaseId): void {
    const l = this.leases.get(id);
    if (!l) throw new LeaseNotFoundError(id);
    if (l.timer) this.clock.clearTimeout(l.timer);
    this.leases.delete(id);
    const keys = [...l.keys].sort();
    if (keys.length === 0) return;
    this.rev++;
    for (const k of keys) this.deleteKey(k);
    this.afterCommit();
  }

  leaseCount(): number {
    return this.leases.size;
  }

  assertTtl(ttl: number): void {
    if (!Number.isFinite(ttl)) throw new InvalidArgumentError('TTL must be finite');
  }
}

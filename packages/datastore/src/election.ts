import { silentLogger, type Clock, type Logger } from '@calyx/core';
import {
  AlreadyExistsError,
  ConflictError,
  DatastoreError,
  InvalidArgumentError,
  NotFoundError,
} from './errors.js';
import { LeaseKeeper } from './lease-keeper.js';
import type {
  Compare,
  Datastore,
  DeleteOptions,
  KeyValue,
  Lease,
  LeaseId,
  ListResult,
  PutOptions,
  ReadOptions,
  Revision,
  TxnOp,
  TxnRequest,
  TxnResult,
  UpdateOptions,
  WatchMessage,
  WatchOptions,
} from './types.js';

/** This instance is not (or no longer) the elected writer: nothing was written. */
export class NotLeaderError extends DatastoreError {
  constructor(
    readonly electionKey: string,
    readonly leader: string | undefined,
  ) {
    super(
      'NOT_LEADER',
      `not the elected writer for ${electionKey}${leader ? ` (the leader is ${leader})` : ''}; nothing was written`,
    );
  }
}

/** What a fenced writer proves on every write: the election key still holds its token. */
export interface Fence {
  key: string;
  token: string;
  /** Checked before each write: false fails the write early with NotLeaderError. */
  isFresh?: () => boolean;
}

const holder = (token: string | undefined) => token?.slice(0, token.lastIndexOf('#')) || token;

/**
 * A Datastore whose every write is conditional on the election key still holding this
 * writer's token, in the same transaction. A writer that lost its leadership — paused,
 * partitioned, its lease expired and another elected — cannot land a single write after the
 * new leader's election: the compare fails and the write is refused with NotLeaderError.
 * Reads pass through. Works on every backend (it only uses the contract's transactions).
 */
export class FencedDatastore implements Datastore {
  constructor(
    private readonly inner: Datastore,
    readonly fence: Fence,
  ) {}

  private early(): void {
    if (this.fence.isFresh && !this.fence.isFresh())
      throw new NotLeaderError(this.fence.key, undefined);
  }

  private get compare(): Compare {
    return { key: this.fence.key, target: 'value', op: '=', value: this.fence.token };
  }

  /** After a failed fenced transaction whose last failure op read the fence key. */
  private lost(r: TxnResult): NotLeaderError | undefined {
    const last = r.results.at(-1);
    const token = last?.type === 'get' ? last.kv?.value : undefined;
    return token === this.fence.token
      ? undefined
      : new NotLeaderError(this.fence.key, holder(token));
  }

  get(key: string, opts?: ReadOptions): Promise<KeyValue | undefined> {
    return this.inner.get(key, opts);
  }

  list(prefix: string, opts?: ReadOptions): Promise<ListResult> {
    return this.inner.list(prefix, opts);
  }

  watch(prefix: string, opts?: WatchOptions): AsyncIterable<WatchMessage> {
    return this.inner.watch(prefix, opts);
  }

  revision(): Promise<Revision> {
    return this.inner.revision();
  }

  compact(revision: Revision): Promise<void> {
    return this.inner.compact(revision);
  }

  grantLease(ttlSeconds: number): Promise<Lease> {
    return this.inner.grantLease(ttlSeconds);
  }

  keepAliveLease(id: LeaseId): Promise<number> {
    return this.inner.keepAliveLease(id);
  }

  revokeLease(id: LeaseId): Promise<void> {
    return this.inner.revokeLease(id);
  }

  async create(key: string, value: string, opts: PutOptions = {}): Promise<KeyValue> {
    this.early();
    const r = await this.inner.txn({
      compares: [{ key, target: 'exists', value: false }, this.compare],
      success: [
        { type: 'put', key, value, ...(opts.lease !== undefined ? { lease: opts.lease } : {}) },
      ],
      failure: [{ type: 'get', key: this.fence.key }],
    });
    if (!r.succeeded) throw this.lost(r) ?? new AlreadyExistsError(key);
    const put = r.results[0];
    if (put?.type !== 'put') throw new Error('fenced create: no put result');
    return put.kv;
  }

  private async guarded(
    key: string,
    expected: Revision | undefined,
    op: TxnOp,
  ): Promise<TxnResult> {
    this.early();
    const compares: Compare[] = [{ key, target: 'exists', value: true }, this.compare];
    if (expected !== undefined)
      compares.push({ key, target: 'modRevision', op: '=', value: expected });
    const r = await this.inner.txn({
      compares,
      success: [op],
      failure: [
        { type: 'get', key },
        { type: 'get', key: this.fence.key },
      ],
    });
    if (r.succeeded) return r;
    const lost = this.lost(r);
    if (lost) throw lost;
    const current = r.results[0]?.type === 'get' ? r.results[0].kv : undefined;
    if (!current) throw new NotFoundError(key);
    throw new ConflictError(key, expected, current.modRevision);
  }

  async update(key: string, value: string, opts: UpdateOptions = {}): Promise<KeyValue> {
    const r = await this.guarded(key, opts.expectedModRevision, {
      type: 'put',
      key,
      value,
      ...(opts.lease !== undefined ? { lease: opts.lease } : {}),
    });
    const put = r.results[0];
    if (put?.type !== 'put') throw new Error('fenced update: no put result');
    return put.kv;
  }

  async delete(key: string, opts: DeleteOptions = {}): Promise<KeyValue> {
    const r = await this.guarded(key, opts.expectedModRevision, { type: 'delete', key });
    const del = r.results[0];
    if (del?.type !== 'delete' || !del.prev) throw new NotFoundError(key);
    return del.prev;
  }

  async put(key: string, value: string, opts: PutOptions = {}): Promise<KeyValue> {
    this.early();
    const r = await this.inner.txn({
      compares: [this.compare],
      success: [
        { type: 'put', key, value, ...(opts.lease !== undefined ? { lease: opts.lease } : {}) },
      ],
      failure: [{ type: 'get', key: this.fence.key }],
    });
    if (!r.succeeded) throw this.lost(r) ?? new NotLeaderError(this.fence.key, undefined);
    const put = r.results[0];
    if (put?.type !== 'put') throw new Error('fenced put: no put result');
    return put.kv;
  }

  async txn(req: TxnRequest): Promise<TxnResult> {
    // Reads are not fenced (get and list are not either): a read-only transaction passes.
    if ([...req.success, ...(req.failure ?? [])].every((o) => o.type === 'get'))
      return this.inner.txn(req);
    // A failure branch runs exactly when the fence may have failed: it must not write.
    if ((req.failure ?? []).some((o) => o.type !== 'get'))
      throw new InvalidArgumentError('a fenced transaction may only read in its failure branch');
    this.early();
    const r = await this.inner.txn({
      compares: [...req.compares, this.compare],
      success: req.success,
      failure: [...(req.failure ?? []), { type: 'get', key: this.fence.key }],
    });
    if (r.succeeded) return r;
    const lost = this.lost(r);
    if (lost) throw lost;
    return { ...r, results: r.results.slice(0, -1) };
  }

  /** Closes the underlying store. */
  close(): Promise<void> {
    return this.inner.close();
  }
}

export interface LeaderElectionOptions {
  /** The election key (e.g. `keys.leader('driver')`). */
  key: string;
  /** This candidate (host name, pod name): shown to the others as the leader. */
  id: string;
  /** Lease TTL: a dead leader is replaced within about this long. */
  ttlSeconds: number;
  clock?: Clock;
  logger?: Logger;
}

/** Won leadership. Writes through `store` are fenced by it. */
export interface Leadership {
  /** Unique to this term: `id#lease`. */
  readonly token: string;
  /** Revision at which this term began; no write of an earlier leader lands after it. */
  readonly since: Revision;
  readonly fence: Fence;
  /** Resolves with the reason when leadership is lost (lease expired, revoked, resigned). */
  readonly lost: Promise<string>;
  /** True while the lease certainly outlives `marginMs`. */
  isFresh(marginMs?: number): boolean;
  /** Gives leadership up now (deletes the key): another candidate takes over at once. */
  resign(): Promise<void>;
}

/**
 * Leader election on any backend: the leader holds a key attached to its lease; the others
 * watch the key and race to create it when it goes (lease expired or revoked). Pair with
 * FencedDatastore so a deposed leader cannot write.
 */
export class LeaderElection {
  private readonly logger: Logger;

  constructor(
    private readonly store: Datastore,
    private readonly opts: LeaderElectionOptions,
  ) {
    this.logger = (opts.logger ?? silentLogger).child({ election: opts.key, candidate: opts.id });
    if (opts.id.includes('#'))
      throw new InvalidArgumentError("a candidate id must not contain '#'");
  }

  /** The current leader's id, or undefined when there is none. */
  async leader(): Promise<string | undefined> {
    return holder((await this.store.get(this.opts.key))?.value);
  }

  /** Campaigns until elected (or `signal` aborts). */
  async campaign(signal?: AbortSignal): Promise<Leadership> {
    const { key, ttlSeconds } = this.opts;
    for (;;) {
      signal?.throwIfAborted();
      const keeper = new LeaseKeeper(this.store, {
        ttlSeconds,
        ...(this.opts.clock ? { clock: this.opts.clock } : {}),
        logger: this.logger,
      });
      const lease = await keeper.start();
      const token = `${this.opts.id}#${lease}`;
      try {
        const kv = await this.store.create(key, token, { lease });
        this.logger.info({ revision: String(kv.modRevision) }, 'elected');
        // Writes stop well before the lease could lapse (a fifth of the TTL, at most 1 s).
        const margin = Math.min(1000, (ttlSeconds * 1000) / 5);
        return {
          token,
          since: kv.modRevision,
          fence: { key, token, isFresh: () => keeper.isFresh(margin) },
          lost: keeper.lost,
          isFresh: (m = 0) => keeper.isFresh(m),
          resign: () => keeper.close({ revoke: true }),
        };
      } catch (e) {
        await keeper.close({ revoke: true }).catch(() => undefined);
        if (!(e instanceof AlreadyExistsError)) throw e;
      }
      await this.waitForVacancy(signal);
    }
  }

  /** Returns once the election key is gone (or its history compacted: look again). */
  private async waitForVacancy(signal?: AbortSignal): Promise<void> {
    const current = await this.store.get(this.opts.key);
    if (!current) return;
    this.logger.debug({ leader: holder(current.value) }, 'standing by');
    for await (const m of this.store.watch(this.opts.key, {
      fromRevision: current.modRevision + 1n,
      prevKv: false,
      ...(signal ? { signal } : {}),
    })) {
      if (m.type === 'resync') return;
      if (m.type === 'delete' && m.key === this.opts.key) return;
    }
    signal?.throwIfAborted();
  }
}

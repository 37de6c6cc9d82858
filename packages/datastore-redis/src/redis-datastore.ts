import { Redis, type RedisOptions } from 'ioredis';
import { backoffDelay, silentLogger, sleep, type Logger } from '@calyx/core';
import {
  AlreadyExistsError,
  ClosedError,
  CompactedError,
  ConflictError,
  FutureRevisionError,
  InvalidArgumentError,
  LeaseNotFoundError,
  NotFoundError,
  UnavailableError,
  validateKey,
  validatePrefix,
  validateRevision,
  validateTtl,
  validateTxn,
  validateValue,
} from '@calyx/datastore';
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
  TxnOpResult,
  TxnRequest,
  TxnResult,
  UpdateOptions,
  WatchMessage,
  WatchOptions,
} from '@calyx/datastore';
import { StreamDoorbell } from './doorbell.js';
import {
  decodeEvents,
  entryFields,
  entryRevision,
  leaseOf,
  mapError,
  toKeyValue,
} from './codec.js';
import { StoreKeys, keyRange, prefixRange, type KeyRange } from './keys.js';
import { SCRIPT, SCRIPT_SHA } from './script.js';

export interface RedisDatastoreOptions {
  /**
   * How to reach Redis (ioredis options): `host`/`port`/`db`/`username`/`password`/`tls`, or
   * `sentinels` + `name` for a Sentinel-managed primary. The adapter sets the options its
   * guarantees depend on itself (RESP2, no resending of unanswered commands, no retries
   * inside the client, its own reconnect backoff and timeouts); `keyPrefix` is refused —
   * use `namespace`.
   */
  redis: RedisOptions;
  /** The store's name; every Redis key of the store starts with the hash tag `{namespace}`. Default `calyx`. */
  namespace?: string;
  logger?: Logger;
  /** Deadline of each request. Default 5 s. */
  requestTimeoutMs?: number;
  /**
   * Revisions of history the stream keeps (older ones are compacted as writes go on, like
   * etcd's auto-compaction): watches and reads further back get the resync signal /
   * `CompactedError`. Default 100,000; 0 keeps everything. Clients of one store should agree.
   */
  historyRevisions?: number;
  /** Keys per page of a list. Default 1,000. */
  pageSize?: number;
  /** A page also ends once its values add up to this many bytes. Default 4 MiB. */
  pageBytes?: number;
  /**
   * Longest pause between lease expiry sweeps of this client. Default 500 ms; 0 turns this
   * client's sweeper off (leases then expire through other clients' sweeps and writes).
   */
  leaseSweepIntervalMs?: number;
  /** Longest pause between reconnection attempts. Default 2 s. */
  maxReconnectDelayMs?: number;
  /**
   * How long the shared blocking stream read waits for news, and how long a quiet watch waits
   * before checking the store has not gone back behind it. Default 5 s.
   */
  watchBlockMs?: number;
  /**
   * Durability: after every write, wait (Redis `WAIT`) until this many replicas acknowledged
   * it, up to `timeoutMs`; when fewer did, the write fails with `UnavailableError` ("may be
   * lost on failover": it was applied on the primary). Without it, Redis replication is
   * asynchronous: a write acknowledged just before the primary dies can be lost by a
   * Sentinel failover (see the README for the measured window).
   */
  waitForReplicas?: { replicas: number; timeoutMs: number };
}

/** What the script's `page` operation returns, decoded. */
interface Page {
  revision: Revision;
  compact: Revision;
  more: boolean;
  lastKey: string | undefined;
  items: KeyValue[];
}

/**
 * How a range looked at an older revision: for every key changed after `at` (up to
 * `covered`), its value at `at` (undefined: it did not exist).
 */
interface Undo {
  readonly at: Revision;
  readonly range: KeyRange;
  covered: Revision;
  readonly before: Map<string, KeyValue | undefined>;
}

type StreamEntry = [id: Buffer, fields: Buffer[]];

/** Entries read from the stream at once: sized so one reply stays around this many bytes. */
const READ_BUDGET = 8 * 1024 * 1024;
const MAX_READ = 1000;
const SWEEP_BATCH = 64;

const byKey = (a: KeyValue, b: KeyValue): number => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);

const putOp = (key: string, value: string, lease: LeaseId | undefined): TxnOp =>
  lease === undefined ? { type: 'put', key, value } : { type: 'put', key, value, lease };

/** The key a put wrote, from its transaction result. */
function written(r: TxnOpResult | undefined): KeyValue {
  if (r?.type !== 'put') throw new Error('the store script answered a put without its result');
  return r.kv;
}

/**
 * The Datastore contract on Redis. Every mutation is one run of one Lua script (compares,
 * the store-wide revision counter, the values with their revisions, one stream entry per
 * revision carrying its events); lists are paginated and pinned to the revision of their
 * first page by undoing, from the stream, what changed after it; a watch reads the stream
 * (woken by the client's one blocking `StreamDoorbell`) from the revision after the last it
 * delivered, so reconnects lose and repeat nothing, and a gap in the stream (trimmed
 * history) ends it with the resync signal. Lease expiry is swept by every client and by
 * every mutation, on the server's clock. Writes are never retried behind the caller's back;
 * reads are, while Redis is unreachable.
 */
export class RedisDatastore implements Datastore {
  readonly client: Redis;
  readonly keys: StoreKeys;
  private readonly logger: Logger;
  private readonly history: string;
  private readonly pageSize: number;
  private readonly pageBytes: number;
  private readonly requestTimeoutMs: number;
  private readonly sweepIntervalMs: number;
  private readonly maxReconnectDelayMs: number;
  private readonly blockMs: number;
  private closed = false;
  /** What ends each active watch. */
  private readonly stops = new Set<() => void>();
  private sweepTimer: NodeJS.Timeout | undefined;
  /** Tells every watch of this client when the history has news (one blocking connection). */
  private readonly doorbell: StreamDoorbell;

  constructor(private readonly opts: RedisDatastoreOptions) {
    if (opts.redis.keyPrefix)
      throw new InvalidArgumentError('RedisDatastore: use `namespace`, not ioredis `keyPrefix`');
    this.keys = new StoreKeys(opts.namespace);
    this.logger = (opts.logger ?? silentLogger).child({
      datastore: 'redis',
      namespace: this.keys.namespace,
    });
    const history = opts.historyRevisions ?? 100_000;
    if (!Number.isInteger(history) || history < 0)
      throw new InvalidArgumentError('historyRevisions must be a whole number >= 0');
    this.history = String(history);
    const w = opts.waitForReplicas;
    if (
      w &&
      (!Number.isInteger(w.replicas) ||
        w.replicas < 1 ||
        !Number.isInteger(w.timeoutMs) ||
        w.timeoutMs < 1 ||
        w.timeoutMs >= (opts.requestTimeoutMs ?? 5_000))
    )
      throw new InvalidArgumentError(
        'waitForReplicas: replicas >= 1 and 0 < timeoutMs < requestTimeoutMs (WAIT 0 would block forever)',
      );
    this.pageSize = opts.pageSize ?? 1000;
    this.pageBytes = opts.pageBytes ?? 4 * 1024 * 1024;
    if (!Number.isInteger(this.pageSize) || this.pageSize < 1 || !(this.pageBytes > 0))
      throw new InvalidArgumentError('pageSize and pageBytes must be positive');
    this.requestTimeoutMs = opts.requestTimeoutMs ?? 5000;
    this.sweepIntervalMs = opts.leaseSweepIntervalMs ?? 500;
    this.maxReconnectDelayMs = opts.maxReconnectDelayMs ?? 2000;
    this.blockMs = opts.watchBlockMs ?? 5000;
    if (!Number.isInteger(this.blockMs) || this.blockMs < 1)
      throw new InvalidArgumentError('watchBlockMs must be a whole number >= 1');
    this.client = new Redis(this.connectionOptions('main'));
    this.client.on('error', (e: Error) =>
      this.logger.debug({ err: e.message }, 'redis connection error'),
    );
    this.doorbell = new StreamDoorbell({
      connect: () => this.watchConnection(),
      streamKey: this.keys.log,
      blockMs: this.blockMs,
      maxReconnectDelayMs: this.maxReconnectDelayMs,
      logger: this.logger,
    });
    this.scheduleSweep(0);
  }

  /** A store whose server has answered: fails now, with a clear error, when Redis cannot be reached. */
  static async open(opts: RedisDatastoreOptions): Promise<RedisDatastore> {
    const store = new RedisDatastore(opts);
    await store.revision().catch(async (e: unknown) => {
      await store.close();
      throw e;
    });
    return store;
  }

  /** Another client on the same store, with its own connections. */
  connect(): RedisDatastore {
    this.check();
    return new RedisDatastore(this.opts);
  }

  private connectionOptions(kind: 'main' | 'watch'): RedisOptions {
    return {
      ...this.opts.redis,
      // RESP2: reply shapes (XREAD, Lua tables) are the same on every server and client mode.
      protocol: 2,
      // A command whose answer was lost may have run: it must fail, never be sent again.
      autoResendUnfulfilledCommands: false,
      maxRetriesPerRequest: 0,
      // Commands wait for a (re)connection, but each fails at its deadline.
      enableOfflineQueue: true,
      connectTimeout: this.opts.redis.connectTimeout ?? this.requestTimeoutMs,
      commandTimeout:
        kind === 'main' ? this.requestTimeoutMs : this.blockMs + this.requestTimeoutMs,
      // The main connection reconnects by itself; the doorbell makes a new one per attempt.
      retryStrategy:
        kind === 'main'
          ? (times: number) =>
              backoffDelay(times - 1, { baseMs: 50, maxMs: this.maxReconnectDelayMs })
          : null,
      // After a Sentinel failover the old primary answers READONLY: go find the new one.
      reconnectOnError: (err: Error) => (/^READONLY/.test(err.message) ? 1 : false),
    };
  }

  private check(): void {
    if (this.closed) throw new ClosedError();
  }

  /**
   * One request whose errors become the contract's. Never repeated: a write whose answer was
   * lost may have run, so the caller sees `UnavailableError` and decides.
   */
  private async once<T>(fn: () => Promise<T>): Promise<T> {
    this.check();
    try {
      return await fn();
    } catch (e) {
      throw this.closed ? new ClosedError() : mapError(e);
    }
  }

  /** A request that changes nothing: tried again, with backoff, while Redis is unreachable. */
  private async retried<T>(fn: () => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.once(fn);
      } catch (e) {
        if (!(e instanceof UnavailableError) || attempt >= 4) throw e;
        await sleep(backoffDelay(attempt, { baseMs: 50, maxMs: 1000 }));
      }
    }
  }

  /** One run of the store script (EVALSHA, falling back to EVAL when the server lacks it). */
  private script(op: string, args: readonly string[], readOnly = false): Promise<unknown> {
    const argv = [op, this.history, ...args];
    const run = async () => {
      try {
        return await this.client.call('EVALSHA', SCRIPT_SHA, '1', this.keys.meta, ...argv);
      } catch (e) {
        // NOSCRIPT: nothing ran, so sending the script itself is safe even for writes.
        if (!(e instanceof Error) || !e.message.startsWith('NOSCRIPT')) throw e;
        return await this.client.call('EVAL', SCRIPT, '1', this.keys.meta, ...argv);
      }
    };
    if (readOnly) return this.retried(run);
    const durable = this.opts.waitForReplicas;
    // Only key changes wait for replicas (lease sweeps and keepalives do not block the
    // connection for them).
    if (!durable || op !== 'txn') return this.once(run);
    return this.once(() => this.durably(argv, durable));
  }

  /**
   * The script and `WAIT` in one pipeline: on one socket, so the WAIT counts this write and
   * not the (empty) history of a connection reopened in between. Only a transaction that wrote
   * fails when too few replicas acknowledged it.
   */
  private async durably(
    argv: readonly string[],
    durable: { replicas: number; timeoutMs: number },
  ): Promise<unknown> {
    const send = async (first: 'EVALSHA' | 'EVAL') => {
      const res = await this.client
        .pipeline()
        .call(first, first === 'EVALSHA' ? SCRIPT_SHA : SCRIPT, '1', this.keys.meta, ...argv)
        .call('WAIT', String(durable.replicas), String(durable.timeoutMs))
        .exec();
      if (!res) throw new UnavailableError('Redis pipeline returned nothing');
      return res;
    };
    let res = await send('EVALSHA');
    const scriptError = res[0]![0];
    // NOSCRIPT: nothing ran, so sending the script itself is safe even for writes.
    if (scriptError instanceof Error && scriptError.message.startsWith('NOSCRIPT'))
      res = await send('EVAL');
    const [[e1, r], [e2, acked]] = res as [[Error | null, unknown], [Error | null, unknown]];
    if (e1) throw e1;
    const wrote = Array.isArray(r) && r[0] === 'ok' && Number(r[1]) === 1;
    if (wrote && (e2 || Number(acked) < durable.replicas))
      throw new UnavailableError(
        `write applied on the primary but acknowledged by ${e2 ? 'no' : Number(acked)} of ${durable.replicas} replica(s) within ${durable.timeoutMs} ms: it may be lost on failover`,
      );
    return r;
  }

  /** Rejects a read before anything is sent: closed store, bad key or prefix, bad revision. */
  private checkRead(keyOrPrefix: string, isPrefix: boolean, revision: Revision | undefined): void {
    this.check();
    if (isPrefix) validatePrefix(keyOrPrefix);
    else validateKey(keyOrPrefix);
    validateRevision('revision', revision);
  }

  /** Rejects a write before anything is sent: closed store, bad key, value or revision. */
  private checkWrite(key: string, value: string | undefined, expected?: Revision): void {
    this.check();
    validateKey(key);
    if (value !== undefined) validateValue(key, value);
    validateRevision('expectedModRevision', expected);
  }

  // --- reads ---------------------------------------------------------------------------

  async get(key: string, opts: ReadOptions = {}): Promise<KeyValue | undefined> {
    this.checkRead(key, false, opts.revision);
    if (opts.revision === undefined || opts.revision === 0n) {
      const r = (await this.retried(() =>
        this.client.call('HMGET', this.keys.data(key), 'v', 'c', 'm', 'n', 'l'),
      )) as (string | null)[];
      return r[1] == null ? undefined : toKeyValue(key, r);
    }
    const r = await this.read(keyRange(key), opts.revision);
    return r.items[0];
  }

  async list(prefix: string, opts: ReadOptions = {}): Promise<ListResult> {
    this.checkRead(prefix, true, opts.revision);
    const pinned = opts.revision === 0n ? undefined : opts.revision;
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.read(prefixRange(prefix), pinned);
      } catch (e) {
        // History trimmed between two pages of an unpinned list: start over at a new revision.
        if (!(e instanceof CompactedError) || pinned !== undefined || attempt >= 3) throw e;
      }
    }
  }

  /**
   * Every key of `range` at `revision` (default: the revision of the first page). Pages are
   * read at the current revision; when that has moved past the pinned one, the changes in
   * between are undone from the stream (which holds every previous value).
   */
  private async read(range: KeyRange, revision: Revision | undefined): Promise<ListResult> {
    const items: KeyValue[] = [];
    let pinned = revision;
    let after: string | undefined;
    let undo: Undo | undefined;
    for (;;) {
      const page = await this.page(range, after);
      if (pinned === undefined) pinned = page.revision;
      if (pinned > page.revision) throw new FutureRevisionError(pinned, page.revision);
      if (pinned < page.compact) throw new CompactedError(pinned, page.compact);
      const upTo = page.more ? page.lastKey : undefined;
      if (page.revision === pinned) {
        items.push(...page.items);
      } else {
        undo ??= { at: pinned, range, covered: pinned, before: new Map() };
        await this.undoUpTo(undo, page.revision);
        items.push(...this.undone(undo, page.items, after, upTo));
      }
      if (!page.more || page.lastKey === undefined) return { items, revision: pinned };
      after = page.lastKey;
    }
  }

  private async page(range: KeyRange, after: string | undefined): Promise<Page> {
    const r = (await this.script(
      'page',
      [
        after === undefined ? range.min : `(${after}`,
        range.max,
        String(this.pageSize),
        String(this.pageBytes),
      ],
      true,
    )) as unknown[];
    const items: KeyValue[] = [];
    for (let i = 4; i + 5 < r.length; i += 6) items.push(toKeyValue(String(r[i]), r, i + 1));
    return {
      revision: BigInt(String(r[0])),
      compact: BigInt(String(r[1])),
      more: Number(r[2]) === 1,
      lastKey: r[3] == null ? undefined : String(r[3]),
      items,
    };
  }

  /** Folds the stream's events after `undo.covered` up to `rev` into `undo`. */
  private async undoUpTo(undo: Undo, rev: Revision): Promise<void> {
    let count = 256;
    while (undo.covered < rev) {
      const expected = undo.covered + 1n;
      const entries = (await this.retried(() =>
        this.client.callBuffer(
          'XRANGE',
          this.keys.log,
          `${expected}-0`,
          `${rev}-0`,
          'COUNT',
          String(count),
        ),
      )) as StreamEntry[];
      let bytes = 0;
      for (const [id, fields] of entries) {
        const at = entryRevision(id);
        if (at !== undo.covered + 1n) {
          // The history after the pinned revision has been trimmed since the page was read.
          throw new CompactedError(undo.at, await this.compactRevision());
        }
        const blob = entryFields(fields).events;
        bytes += blob.length;
        for (const ev of decodeEvents(at, blob, undo.range.contains, true)) {
          const key = ev.type === 'put' ? ev.kv.key : ev.key;
          if (!undo.before.has(key)) undo.before.set(key, ev.prev);
        }
        undo.covered = at;
      }
      if (entries.length === 0) throw new CompactedError(undo.at, await this.compactRevision());
      count = this.nextCount(entries.length, bytes);
    }
  }

  /** A page read at a later revision, as it was at `undo.at`: keys in (after, upTo]. */
  private undone(
    undo: Undo,
    current: KeyValue[],
    after: string | undefined,
    upTo: string | undefined,
  ): KeyValue[] {
    const out = current.filter((kv) => !undo.before.has(kv.key));
    for (const [key, kv] of undo.before) {
      if (!kv) continue;
      if (after !== undefined && key <= after) continue;
      if (upTo !== undefined && key > upTo) continue;
      out.push(kv);
    }
    return out.sort(byKey);
  }

  private async compactRevision(): Promise<Revision> {
    const r = await this.retried(() => this.client.call('HGET', this.keys.meta, 'compact'));
    return BigInt(r == null ? '0' : String(r));
  }

  /** Entries to ask for next, from the size of the last batch. */
  private nextCount(entries: number, bytes: number): number {
    const avg = Math.max(1, bytes / Math.max(1, entries));
    return Math.max(1, Math.min(MAX_READ, Math.floor(READ_BUDGET / avg)));
  }

  async revision(): Promise<Revision> {
    const r = await this.retried(() => this.client.call('HGET', this.keys.meta, 'rev'));
    return BigInt(r == null ? '1' : String(r));
  }

  // --- writes ----------------------------------------------------------------------------

  private static compareArgs(c: Compare): string[] {
    switch (c.target) {
      case 'exists':
        return [c.key, 'e', '', c.value ? '1' : '0'];
      case 'value':
        return [c.key, 'v', c.op, c.value];
      case 'modRevision':
        return [c.key, 'm', c.op, c.value.toString()];
      case 'createRevision':
        return [c.key, 'c', c.op, c.value.toString()];
      case 'version':
        return [c.key, 'n', c.op, c.value.toString()];
    }
  }

  private static opArgs(o: TxnOp): string[] {
    switch (o.type) {
      case 'put':
        return ['p', o.key, o.value, (o.lease ?? 0n).toString()];
      case 'delete':
        return ['d', o.key, '', '0'];
      case 'get':
        return ['g', o.key, '', '0'];
    }
  }

  /** One transaction, validated by the caller. */
  private async exec(req: TxnRequest): Promise<TxnResult> {
    const failure = req.failure ?? [];
    const args = [
      String(req.compares.length),
      String(req.success.length),
      String(failure.length),
      ...req.compares.flatMap(RedisDatastore.compareArgs),
      ...req.success.flatMap(RedisDatastore.opArgs),
      ...failure.flatMap(RedisDatastore.opArgs),
    ];
    const r = (await this.script('txn', args)) as unknown[];
    if (r[0] === 'lease') throw new LeaseNotFoundError(BigInt(String(r[1])));
    if (r[0] !== 'ok') throw new Error(`unexpected reply from the store script: ${String(r[0])}`);
    const succeeded = Number(r[1]) === 1;
    const rev = BigInt(String(r[2]));
    const ops = succeeded ? req.success : failure;
    const raw = r[3] as unknown[][];
    const results: TxnOpResult[] = ops.map((o, i) => {
      const x = raw[i] ?? [];
      switch (o.type) {
        case 'put':
          return {
            type: 'put',
            kv: {
              key: o.key,
              value: o.value,
              createRevision: BigInt(String(x[1])),
              modRevision: rev,
              version: BigInt(String(x[2])),
              lease: o.lease === undefined ? null : leaseOf(o.lease.toString()),
            },
          };
        case 'delete': {
          const prev = x.length > 1 ? toKeyValue(o.key, x, 1) : undefined;
          return { type: 'delete', deleted: prev !== undefined, prev };
        }
        case 'get':
          return { type: 'get', kv: x.length > 1 ? toKeyValue(o.key, x, 1) : undefined };
      }
    });
    return { succeeded, revision: rev, results };
  }

  async create(key: string, value: string, opts: PutOptions = {}): Promise<KeyValue> {
    this.checkWrite(key, value);
    const r = await this.exec({
      compares: [{ key, target: 'exists', value: false }],
      success: [putOp(key, value, opts.lease)],
    });
    if (!r.succeeded) throw new AlreadyExistsError(key);
    return written(r.results[0]);
  }

  /**
   * `write` if the key exists (at modRevision `expected`, when given), else a read of it in
   * the same script, which tells NotFoundError from ConflictError without a second request.
   */
  private async guarded(key: string, expected: Revision | undefined, write: TxnOp) {
    const compares: Compare[] = [{ key, target: 'exists', value: true }];
    if (expected !== undefined)
      compares.push({ key, target: 'modRevision', op: '=', value: expected });
    const r = await this.exec({ compares, success: [write], failure: [{ type: 'get', key }] });
    if (!r.succeeded) {
      const current = (r.results[0] as Extract<TxnOpResult, { type: 'get' }>).kv;
      if (!current) throw new NotFoundError(key);
      throw new ConflictError(key, expected, current.modRevision);
    }
    return r.results[0]!;
  }

  async update(key: string, value: string, opts: UpdateOptions = {}): Promise<KeyValue> {
    this.checkWrite(key, value, opts.expectedModRevision);
    const expected = opts.expectedModRevision;
    return written(await this.guarded(key, expected, putOp(key, value, opts.lease)));
  }

  async put(key: string, value: string, opts: PutOptions = {}): Promise<KeyValue> {
    this.checkWrite(key, value);
    const r = await this.exec({ compares: [], success: [putOp(key, value, opts.lease)] });
    return written(r.results[0]);
  }

  async delete(key: string, opts: DeleteOptions = {}): Promise<KeyValue> {
    this.checkWrite(key, undefined, opts.expectedModRevision);
    const r = await this.guarded(key, opts.expectedModRevision, { type: 'delete', key });
    const prev = r.type === 'delete' ? r.prev : undefined;
    if (!prev) throw new NotFoundError(key);
    return prev;
  }

  async txn(req: TxnRequest): Promise<TxnResult> {
    this.check();
    validateTxn(req);
    return this.exec(req);
  }

  async compact(revision: Revision): Promise<void> {
    this.check();
    validateRevision('revision', revision);
    const r = (await this.script('compact', [revision.toString()])) as unknown[];
    if (r[0] === 'future') throw new FutureRevisionError(revision, BigInt(String(r[1])));
  }

  // --- leases ----------------------------------------------------------------------------

  async grantLease(ttlSeconds: number): Promise<Lease> {
    this.check();
    validateTtl(ttlSeconds);
    const id = await this.script('grant', [String(ttlSeconds)]);
    return { id: BigInt(String(id)), ttlSeconds };
  }

  async keepAliveLease(id: LeaseId): Promise<number> {
    this.check();
    const r = (await this.script('keepalive', [id.toString()])) as unknown[];
    if (r[0] === 'gone') throw new LeaseNotFoundError(id);
    return Number(r[1]);
  }

  async revokeLease(id: LeaseId): Promise<void> {
    this.check();
    const r = (await this.script('revoke', [id.toString()])) as unknown[];
    if (r[0] === 'gone') throw new LeaseNotFoundError(id);
  }

  /**
   * Expires due leases (their keys deleted, with delete events) even when nobody writes;
   * wakes again when the next lease is due, or after `leaseSweepIntervalMs` at the latest
   * (other clients may grant shorter leases meanwhile). Any client may sweep: the script is
   * idempotent.
   */
  private scheduleSweep(ms: number): void {
    if (this.closed || this.sweepIntervalMs <= 0) return;
    this.sweepTimer = setTimeout(() => void this.sweep(), ms);
    this.sweepTimer.unref();
  }

  private async sweep(): Promise<void> {
    let delay = this.sweepIntervalMs;
    try {
      const [expired, nextMs] = (
        (await this.script('sweep', [String(SWEEP_BATCH)])) as number[]
      ).map(Number) as [number, number];
      if (expired >= SWEEP_BATCH) delay = 0;
      else if (nextMs >= 0) delay = Math.min(delay, Math.max(5, nextMs + 1));
    } catch (e) {
      if (this.closed) return;
      this.logger.debug({ err: (e as Error).message }, 'lease sweep failed');
    }
    this.scheduleSweep(delay);
  }

  // --- watch -----------------------------------------------------------------------------

  private watchConnection(): Redis {
    const conn = new Redis(this.connectionOptions('watch'));
    conn.on('error', (e: Error) => this.logger.debug({ err: e.message }, 'watch connection error'));
    return conn;
  }

  async *watch(prefix: string, opts: WatchOptions = {}): AsyncGenerator<WatchMessage> {
    this.checkRead(prefix, true, undefined);
    validateRevision('fromRevision', opts.fromRevision);
    if (opts.signal?.aborted) return;
    const prevKv = opts.prevKv ?? true;
    const wanted = (key: string) => key.startsWith(prefix);
    const halt = new AbortController();
    const release = this.whenStopped(opts.signal, () => halt.abort());
    try {
      // The watch owns its resume point: the first revision it has not delivered yet.
      let next = opts.fromRevision ?? (await this.revision()) + 1n;
      // Revision 1 is the empty store: the first events are at revision 2.
      if (next < 2n) next = 2n;
      let count = MAX_READ;
      // The highest revision read from the stream, and whether to make sure the store has
      // not gone back behind it (checked after a reconnect and after a quiet spell).
      let observed = 0n;
      let verify = false;
      // The token of revision `next - 1`, when this watch has read it: the next entry must
      // name it as its predecessor, or the history was rewritten under the watch.
      let lastToken: string | undefined;
      for (let attempt = 0; !halt.signal.aborted;) {
        try {
          if (verify) {
            const raw = await this.client.call('HGET', this.keys.meta, 'rev');
            const current = BigInt(raw == null ? '1' : String(raw));
            if (current < observed) {
              // Revisions this watch has seen are gone (a failover to a replica that had not
              // received them, a restart without persistence): re-list instead of guessing.
              this.logger.warn(
                { prefix, observed: observed.toString(), current: current.toString() },
                'the store went back to an older revision; ending the watch with resync',
              );
              yield { type: 'resync', reason: 'compacted', compactRevision: current };
              return;
            }
            verify = false;
          }
          // Non-blocking, on the shared connection; the doorbell says when to read again.
          const seen = this.doorbell.seq;
          const reply = (await this.client.callBuffer(
            'XREAD',
            'COUNT',
            String(count),
            'STREAMS',
            this.keys.log,
            `${next - 1n}-0`,
          )) as [Buffer, StreamEntry[]][] | null;
          attempt = 0;
          const entries = reply?.[0]?.[1] ?? [];
          if (entries.length === 0) {
            // A quiet spell: make sure the store has not gone back behind this watch.
            if (!(await this.doorbell.wait(seen, this.blockMs, halt.signal))) verify = true;
            continue;
          }
          let bytes = 0;
          for (const [id, fields] of entries) {
            const rev = entryRevision(id);
            if (rev > observed) observed = rev;
            const entry = entryFields(fields);
            // Revisions before a future `fromRevision`.
            if (rev < next) {
              lastToken = rev === next - 1n ? entry.token : undefined;
              continue;
            }
            if (rev > next) {
              // Every revision is one entry: a gap means the history from `next` was trimmed.
              yield { type: 'resync', reason: 'compacted', compactRevision: rev };
              return;
            }
            if (lastToken !== undefined && entry.prevToken !== lastToken) {
              this.logger.warn(
                { prefix, revision: rev.toString() },
                'the history this watch delivered was rewritten; ending the watch with resync',
              );
              yield { type: 'resync', reason: 'compacted', compactRevision: rev };
              return;
            }
            lastToken = entry.token;
            const blob = entry.events;
            bytes += blob.length;
            for (const ev of decodeEvents(rev, blob, wanted, prevKv)) {
              // Stopped while the consumer was away: deliver nothing more.
              if (halt.signal.aborted) return;
              yield ev;
            }
            next = rev + 1n;
          }
          count = this.nextCount(entries.length, bytes);
        } catch (e) {
          if (halt.signal.aborted || this.closed) return;
          verify = true;
          // A read too big to arrive within the request timeout must not be asked again as is.
          count = Math.max(1, Math.floor(count / 4));
          const delay = backoffDelay(attempt++, { baseMs: 50, maxMs: this.maxReconnectDelayMs });
          this.logger.warn(
            { prefix, resumeFrom: next.toString(), err: (e as Error).message, retryInMs: delay },
            'watch interrupted; resuming from the last delivered revision',
          );
          await sleep(delay, { signal: halt.signal }).catch(() => undefined);
        }
      }
    } finally {
      release();
    }
  }

  /** Calls `stop` when `signal` aborts or the store closes; returns what undoes that. */
  private whenStopped(signal: AbortSignal | undefined, stop: () => void): () => void {
    this.stops.add(stop);
    signal?.addEventListener('abort', stop, { once: true });
    return () => {
      this.stops.delete(stop);
      signal?.removeEventListener('abort', stop);
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.sweepTimer);
    for (const stop of [...this.stops]) stop();
    await this.doorbell.close();
    this.client.disconnect();
  }
}

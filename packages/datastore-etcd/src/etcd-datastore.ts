import './protobuf-long.js';
import { Etcd3, isRecoverableError, type IOptions } from 'etcd3';
import { ConsecutiveBreaker, circuitBreaker, handleWhen, noop } from 'cockatiel';
import { backoffDelay, silentLogger, sleep, AsyncQueue, type Logger } from '@calyx/core';
import {
  AlreadyExistsError,
  ClosedError,
  CompactedError,
  FutureRevisionError,
  ConflictError,
  LeaseNotFoundError,
  NotFoundError,
  UnavailableError,
  validateKey,
  validatePrefix,
  validateRevision,
  validateTtl,
  validateTxn,
  validateValue,
  type Datastore,
  type DeleteOptions,
  type KeyValue,
  type Lease,
  type LeaseId,
  type ListResult,
  type PutOptions,
  type ReadOptions,
  type Revision,
  type TxnOp,
  type TxnOpResult,
  type TxnRequest,
  type TxnResult,
  type UpdateOptions,
  type WatchEvent,
  type WatchMessage,
  type WatchOptions,
} from '@calyx/datastore';
import { Keyspace, mapError, prefixEnd, toEtcdCompare, type RawKeyValue } from './codec.js';

export interface EtcdTls {
  /** CA certificate(s) (PEM) that signed the servers' certificates. */
  ca: Buffer;
  /** Client certificate and key (PEM), for servers that require client certificates. */
  cert?: Buffer;
  key?: Buffer;
}

export interface EtcdDatastoreOptions {
  /** `http(s)://host:port` of every member; requests go to any of them. */
  endpoints: readonly string[];
  /** Prefix under which this store's keys live in etcd (several deployments, or tests, on one etcd). */
  namespace?: string;
  tls?: EtcdTls;
  auth?: { username: string; password: string };
  logger?: Logger;
  /** Deadline of each unary request. Default 5 s. */
  requestTimeoutMs?: number;
  /** Connecting. Default 5 s. */
  dialTimeoutMs?: number;
  /** Keys per range request of a list (each a message of up to this many values). Default 10,000. */
  pageSize?: number;
  /** gRPC message ceiling: a watch catching up on a long history must not be cut. Default 256 MiB. */
  maxMessageBytes?: number;
  /** Longest pause between watch reconnection attempts. Default 2 s. */
  maxReconnectDelayMs?: number;
}

interface RawEvent {
  type: 'Put' | 'Delete';
  kv: RawKeyValue;
  prev_kv?: RawKeyValue | null;
}

interface RawWatchResponse {
  header: { revision: string };
  created: boolean;
  canceled: boolean;
  compact_revision: string;
  cancel_reason: string;
  events: RawEvent[];
}

interface Duplex<Req, Res> {
  write(item: Req): void;
  end(): void;
  cancel(): void;
  on(event: 'data', fn: (item: Res) => void): unknown;
  on(event: 'error', fn: (err: Error) => void): unknown;
  on(event: 'end', fn: () => void): unknown;
  removeAllListeners(): unknown;
}

type WatchItem = { response: RawWatchResponse } | { error: Error };

/**
 * The Datastore contract on etcd v3. Every conditional write is one etcd transaction; lists
 * are paginated and pinned to the revision of their first page; a watch owns its resume
 * revision (the last revision it delivered + 1) and reconnects from there after any
 * disconnect, so no event is lost or repeated, and a compacted history ends it with the
 * resync signal. Writes are never retried behind the caller's back (a retried transaction
 * could apply twice); reads are retried on another member when one is unreachable.
 */
export class EtcdDatastore implements Datastore {
  readonly client: Etcd3;
  private readonly ks: Keyspace;
  private readonly logger: Logger;
  private readonly pageSize: number;
  private readonly maxReconnectDelayMs: number;
  private closed = false;
  private readonly aborts = new Set<AbortController>();
  private keepAlive:
    | {
        stream: Duplex<{ ID: string }, { ID: string; TTL: string }>;
        waiters: Map<string, { resolve: (ttl: number) => void; reject: (e: unknown) => void }[]>;
      }
    | undefined;

  constructor(private readonly opts: EtcdDatastoreOptions) {
    if (opts.endpoints.length === 0) throw new Error('EtcdDatastore needs at least one endpoint');
    this.ks = new Keyspace(opts.namespace ?? '');
    this.logger = (opts.logger ?? silentLogger).child({ datastore: 'etcd' });
    this.pageSize = opts.pageSize ?? 10_000;
    this.maxReconnectDelayMs = opts.maxReconnectDelayMs ?? 2000;
    const timeout = opts.requestTimeoutMs ?? 5000;
    const maxBytes = opts.maxMessageBytes ?? 256 * 1024 * 1024;
    const options: IOptions = {
      hosts: [...opts.endpoints],
      dialTimeout: opts.dialTimeoutMs ?? 5000,
      grpcOptions: {
        'grpc.max_receive_message_length': maxBytes,
        'grpc.max_send_message_length': maxBytes,
        'grpc.keepalive_time_ms': 10_000,
        'grpc.keepalive_timeout_ms': 5000,
        'grpc.keepalive_permit_without_calls': 1,
      },
      defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + timeout }),
      faultHandling: {
        // No retry inside the client: a retried transaction could apply twice. Reads retry here.
        global: noop,
        host: () =>
          circuitBreaker(handleWhen(isRecoverableError), {
            halfOpenAfter: 500,
            breaker: new ConsecutiveBreaker(3),
          }),
      },
      ...(opts.tls
        ? {
            credentials: {
              rootCertificate: opts.tls.ca,
              ...(opts.tls.cert ? { certChain: opts.tls.cert } : {}),
              ...(opts.tls.key ? { privateKey: opts.tls.key } : {}),
            },
          }
        : {}),
      ...(opts.auth ? { auth: { ...opts.auth } } : {}),
    };
    this.client = new Etcd3(options);
  }

  /** Another client on the same data, with its own connections. */
  connect(): EtcdDatastore {
    this.check();
    return new EtcdDatastore(this.opts);
  }

  private check(): void {
    if (this.closed) throw new ClosedError();
  }

  /** Runs an etcd call, mapping its errors; idempotent reads are retried when etcd is unreachable. */
  private async call<T>(
    fn: () => Promise<T>,
    ctx: Parameters<typeof mapError>[1] = {},
    idempotent = false,
  ): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      this.check();
      try {
        return await fn();
      } catch (e) {
        if (this.closed) throw new ClosedError();
        const mapped = mapError(e, ctx);
        if (!(mapped instanceof UnavailableError) || !idempotent || attempt >= 4) throw mapped;
        await sleep(backoffDelay(attempt, { baseMs: 50, maxMs: 1000 }));
      }
    }
  }

  private kv(raw: RawKeyValue): KeyValue {
    return this.ks.toKeyValue(raw);
  }

  async get(key: string, opts: ReadOptions = {}): Promise<KeyValue | undefined> {
    this.check();
    validateKey(key);
    validateRevision('revision', opts.revision);
    const r = await this.call(
      () =>
        this.client.kv.range({
          key: this.ks.encode(key),
          ...(opts.revision !== undefined ? { revision: opts.revision.toString() } : {}),
        }),
      { ...(opts.revision !== undefined ? { revision: opts.revision } : {}) },
      true,
    );
    this.checkFuture(opts.revision, BigInt(r.header.revision));
    const raw = r.kvs[0] as RawKeyValue | undefined;
    return raw ? this.kv(raw) : undefined;
  }

  /** etcd reads a future revision as an error on some versions and silently on none: be explicit. */
  private checkFuture(rev: Revision | undefined, current: Revision): void {
    if (rev !== undefined && rev > current) {
      throw new FutureRevisionError(rev, current);
    }
  }

  async list(prefix: string, opts: ReadOptions = {}): Promise<ListResult> {
    this.check();
    validatePrefix(prefix);
    validateRevision('revision', opts.revision);
    const start = this.ks.encode(prefix);
    const end = prefixEnd(start);
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.listPinned(start, end, opts.revision);
      } catch (e) {
        // History compacted between two pages of an unpinned list: start over at a new revision.
        if (!(e instanceof CompactedError) || opts.revision !== undefined || attempt >= 3) throw e;
      }
    }
  }

  private async listPinned(
    start: Buffer,
    end: Buffer,
    revision: Revision | undefined,
  ): Promise<ListResult> {
    const items: KeyValue[] = [];
    let from = start;
    let pinned = revision;
    for (;;) {
      const at = pinned;
      const r = await this.call(
        () =>
          this.client.kv.range({
            key: from,
            range_end: end,
            limit: this.pageSize,
            ...(at !== undefined ? { revision: at.toString() } : {}),
          }),
        { ...(at !== undefined ? { revision: at } : {}) },
        true,
      );
      const headerRev = BigInt(r.header.revision);
      if (pinned === undefined) pinned = headerRev;
      else this.checkFuture(revision, headerRev);
      const kvs = r.kvs as RawKeyValue[];
      for (const raw of kvs) items.push(this.kv(raw));
      if (!r.more || kvs.length === 0) return { items, revision: pinned };
      from = Buffer.concat([kvs[kvs.length - 1]!.key, Buffer.from([0])]);
    }
  }

  async create(key: string, value: string, opts: PutOptions = {}): Promise<KeyValue> {
    this.check();
    validateKey(key);
    validateValue(key, value);
    const k = this.ks.encode(key);
    const r = await this.call(
      () =>
        this.client.kv.txn({
          compare: [{ key: k, target: 'Create', result: 'Equal', create_revision: '0' }],
          success: [{ request_put: this.putRequest(k, value, opts.lease) }],
          failure: [],
        }),
      { ...(opts.lease !== undefined ? { lease: opts.lease } : {}) },
    );
    if (!r.succeeded) throw new AlreadyExistsError(key);
    const rev = BigInt(r.header.revision);
    return {
      key,
      value,
      createRevision: rev,
      modRevision: rev,
      version: 1n,
      lease: opts.lease ?? null,
    };
  }

  private putRequest(k: Buffer, value: string, lease: LeaseId | undefined) {
    return {
      key: k,
      value: Buffer.from(value, 'utf8'),
      prev_kv: true,
      ...(lease !== undefined ? { lease: lease.toString() } : {}),
    };
  }

  /** The kv a put produced, from the previous kv etcd returned and the write's revision. */
  private written(
    key: string,
    value: string,
    rev: Revision,
    prev: RawKeyValue | null | undefined,
    lease: LeaseId | undefined,
  ): KeyValue {
    const p = prev ? this.kv(prev) : undefined;
    return {
      key,
      value,
      createRevision: p ? p.createRevision : rev,
      modRevision: rev,
      version: p ? p.version + 1n : 1n,
      lease: lease ?? null,
    };
  }

  /**
   * A write that needs the key to exist (and, with `expected`, to be at that mod revision):
   * one transaction whose failure branch reads the key to tell NotFound from Conflict.
   */
  private async guarded(
    key: string,
    expected: Revision | undefined,
    write: Record<string, unknown>,
    lease?: LeaseId,
  ) {
    const k = this.ks.encode(key);
    // A key exists iff its create revision is not 0; an expected mod revision above 0 implies
    // it (a missing key has mod revision 0), and one compare is cheaper than two.
    const compare: Record<string, unknown>[] =
      expected !== undefined && expected > 0n
        ? [{ key: k, target: 'Mod', result: 'Equal', mod_revision: expected.toString() }]
        : [{ key: k, target: 'Create', result: 'Greater', create_revision: '0' }];
    if (expected === 0n)
      compare.push({ key: k, target: 'Mod', result: 'Equal', mod_revision: '0' });
    const r = await this.call(
      () =>
        this.client.kv.txn({
          compare,
          success: [write],
          failure: [{ request_range: { key: k } }],
        } as never),
      { ...(lease !== undefined ? { lease } : {}) },
    );
    if (!r.succeeded) {
      const current = r.responses[0]?.response_range?.kvs[0] as RawKeyValue | undefined;
      if (!current) throw new NotFoundError(key);
      throw new ConflictError(key, expected, BigInt(current.mod_revision));
    }
    return r;
  }

  async update(key: string, value: string, opts: UpdateOptions = {}): Promise<KeyValue> {
    this.check();
    validateKey(key);
    validateValue(key, value);
    validateRevision('expectedModRevision', opts.expectedModRevision);
    const put = { request_put: this.putRequest(this.ks.encode(key), value, opts.lease) };
    const r = await this.guarded(key, opts.expectedModRevision, put, opts.lease);
    const prev = r.responses[0]?.response_put?.prev_kv as RawKeyValue | undefined;
    return this.written(key, value, BigInt(r.header.revision), prev, opts.lease);
  }

  async put(key: string, value: string, opts: PutOptions = {}): Promise<KeyValue> {
    this.check();
    validateKey(key);
    validateValue(key, value);
    const k = this.ks.encode(key);
    const r = await this.call(() => this.client.kv.put(this.putRequest(k, value, opts.lease)), {
      ...(opts.lease !== undefined ? { lease: opts.lease } : {}),
    });
    return this.written(
      key,
      value,
      BigInt(r.header.revision),
      r.prev_kv as RawKeyValue | undefined,
      opts.lease,
    );
  }

  async delete(key: string, opts: DeleteOptions = {}): Promise<KeyValue> {
    this.check();
    validateKey(key);
    validateRevision('expectedModRevision', opts.expectedModRevision);
    const del = { request_delete_range: { key: this.ks.encode(key), prev_kv: true } };
    const r = await this.guarded(key, opts.expectedModRevision, del);
    const prev = r.responses[0]?.response_delete_range?.prev_kvs[0] as RawKeyValue | undefined;
    if (!prev) throw new NotFoundError(key);
    return this.kv(prev);
  }

  private op(o: TxnOp): Record<string, unknown> {
    const k = this.ks.encode(o.key);
    switch (o.type) {
      case 'put':
        return { request_put: this.putRequest(k, o.value, o.lease) };
      case 'delete':
        return { request_delete_range: { key: k, prev_kv: true } };
      case 'get':
        return { request_range: { key: k } };
    }
  }

  async txn(req: TxnRequest): Promise<TxnResult> {
    this.check();
    validateTxn(req);
    const failure = req.failure ?? [];
    const leases = [...req.success, ...failure].flatMap((o) =>
      o.type === 'put' && o.lease !== undefined ? [o.lease] : [],
    );
    const r = await this.call(
      () =>
        this.client.kv.txn({
          compare: req.compares.map((c) => toEtcdCompare(c, this.ks)),
          success: req.success.map((o) => this.op(o)),
          failure: failure.map((o) => this.op(o)),
        } as never),
      { ...(leases.length ? { lease: leases[0]! } : {}) },
    );
    const rev = BigInt(r.header.revision);
    const ops = r.succeeded ? req.success : failure;
    const results: TxnOpResult[] = ops.map((o, i) => {
      const res = r.responses[i];
      switch (o.type) {
        case 'put':
          return {
            type: 'put',
            kv: this.written(
              o.key,
              o.value,
              rev,
              res?.response_put?.prev_kv as RawKeyValue | undefined,
              o.lease,
            ),
          };
        case 'delete': {
          const prev = res?.response_delete_range?.prev_kvs[0] as RawKeyValue | undefined;
          return { type: 'delete', deleted: !!prev, prev: prev ? this.kv(prev) : undefined };
        }
        case 'get': {
          const raw = res?.response_range?.kvs[0] as RawKeyValue | undefined;
          return { type: 'get', kv: raw ? this.kv(raw) : undefined };
        }
      }
    });
    return { succeeded: r.succeeded, revision: rev, results };
  }

  async revision(): Promise<Revision> {
    this.check();
    const r = await this.call(
      // Inside the namespace: a user may only be allowed to read there.
      () => this.client.kv.range({ key: this.ks.encode('/'), keys_only: true, limit: 1 }),
      {},
      true,
    );
    return BigInt(r.header.revision);
  }

  async compact(revision: Revision): Promise<void> {
    this.check();
    validateRevision('revision', revision);
    const current = await this.revision();
    this.checkFuture(revision, current);
    try {
      await this.call(
        () => this.client.kv.compact({ revision: revision.toString(), physical: true }),
        { revision, current },
      );
    } catch (e) {
      // Compacting what is already compacted changes nothing.
      if (!(e instanceof CompactedError)) throw e;
    }
  }

  async grantLease(ttlSeconds: number): Promise<Lease> {
    this.check();
    validateTtl(ttlSeconds);
    const r = await this.call(() => this.client.leaseClient.leaseGrant({ TTL: ttlSeconds }));
    if (r.error) throw new UnavailableError(`etcd refused the lease: ${r.error}`);
    return { id: BigInt(r.ID), ttlSeconds: Number(r.TTL) };
  }

  /** One keepalive stream for every lease of this client; each call waits for its answer. */
  private async keepAliveStream(): Promise<NonNullable<EtcdDatastore['keepAlive']>> {
    if (this.keepAlive) return this.keepAlive;
    const stream = (await this.client.leaseClient.leaseKeepAlive()) as unknown as Duplex<
      { ID: string },
      { ID: string; TTL: string }
    >;
    const ka = {
      stream,
      waiters: new Map<
        string,
        { resolve: (ttl: number) => void; reject: (e: unknown) => void }[]
      >(),
    };
    const failAll = (e: unknown) => {
      if (this.keepAlive === ka) this.keepAlive = undefined;
      for (const list of ka.waiters.values()) for (const w of list) w.reject(e);
      ka.waiters.clear();
    };
    stream.on('data', (res) => {
      const w = ka.waiters.get(res.ID)?.shift();
      if (!w) return;
      if (res.TTL === '0' || !res.TTL) w.reject(new LeaseNotFoundError(BigInt(res.ID)));
      else w.resolve(Number(res.TTL));
    });
    stream.on('error', (e) => failAll(mapError(e, {})));
    stream.on('end', () => failAll(new UnavailableError('etcd keepalive stream ended')));
    this.keepAlive = ka;
    return ka;
  }

  async keepAliveLease(id: LeaseId): Promise<number> {
    this.check();
    const timeoutMs = this.opts.requestTimeoutMs ?? 5000;
    let ka: NonNullable<EtcdDatastore['keepAlive']>;
    try {
      ka = await this.keepAliveStream();
    } catch (e) {
      throw mapError(e, { lease: id });
    }
    return new Promise<number>((resolve, reject) => {
      const key = id.toString();
      const timer = setTimeout(() => {
        const list = ka.waiters.get(key);
        const i = list?.indexOf(entry) ?? -1;
        if (i >= 0) list!.splice(i, 1);
        reject(new UnavailableError(`no keepalive answer for lease ${key} within ${timeoutMs} ms`));
      }, timeoutMs);
      const entry = {
        resolve: (ttl: number) => {
          clearTimeout(timer);
          resolve(ttl);
        },
        reject: (e: unknown) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      const list = ka.waiters.get(key) ?? [];
      list.push(entry);
      ka.waiters.set(key, list);
      ka.stream.write({ ID: key });
    });
  }

  async revokeLease(id: LeaseId): Promise<void> {
    this.check();
    await this.call(() => this.client.leaseClient.leaseRevoke({ ID: id.toString() }), {
      lease: id,
    });
  }

  async *watch(prefix: string, opts: WatchOptions = {}): AsyncGenerator<WatchMessage> {
    this.check();
    validatePrefix(prefix);
    validateRevision('fromRevision', opts.fromRevision);
    if (opts.signal?.aborted) return;
    const ac = new AbortController();
    this.aborts.add(ac);
    const onAbort = () => ac.abort();
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    const start = this.ks.encode(prefix);
    const end = prefixEnd(start);
    const prevKv = opts.prevKv ?? true;
    try {
      // The watch owns its resume point: the first revision it has not delivered yet.
      let next = opts.fromRevision ?? (await this.revision()) + 1n;
      if (next < 1n) next = 1n;
      for (let attempt = 0; !ac.signal.aborted; attempt++) {
        const queue = new AsyncQueue<WatchItem>();
        let stream: Duplex<Record<string, unknown>, RawWatchResponse> | undefined;
        const stop = () => queue.abort();
        ac.signal.addEventListener('abort', stop, { once: true });
        try {
          stream = (await this.client.watchClient.watch()) as unknown as Duplex<
            Record<string, unknown>,
            RawWatchResponse
          >;
          stream.on('data', (response) => queue.push({ response }));
          stream.on('error', (error) => {
            queue.push({ error });
            queue.end();
          });
          stream.on('end', () => queue.end());
          stream.write({
            create_request: {
              key: start,
              range_end: end,
              start_revision: next.toString(),
              prev_kv: prevKv,
            },
          });
          for await (const item of queue) {
            if ('error' in item) throw item.error;
            const res = item.response;
            const compacted = BigInt(res.compact_revision || '0');
            if (compacted > 0n) {
              yield { type: 'resync', reason: 'compacted', compactRevision: compacted };
              return;
            }
            if (res.canceled) throw new Error(`etcd canceled the watch: ${res.cancel_reason}`);
            if (res.created) {
              attempt = 0;
              continue;
            }
            let last = next - 1n;
            for (const ev of res.events) {
              const rev = BigInt(ev.kv.mod_revision);
              // Already delivered before a reconnect.
              if (rev < next) continue;
              yield this.event(ev, prevKv);
              last = rev;
            }
            if (last >= next) next = last + 1n;
          }
          if (ac.signal.aborted) return;
          throw new Error('etcd watch stream ended');
        } catch (e) {
          if (ac.signal.aborted || this.closed) return;
          const delay = backoffDelay(attempt, { baseMs: 50, maxMs: this.maxReconnectDelayMs });
          this.logger.warn(
            { prefix, resumeFrom: next.toString(), err: (e as Error).message, retryInMs: delay },
            'watch interrupted; resuming from the last delivered revision',
          );
          await sleep(delay, { signal: ac.signal }).catch(() => undefined);
        } finally {
          ac.signal.removeEventListener('abort', stop);
          if (stream) {
            stream.removeAllListeners();
            // A stream that errored may already be gone: cancelling it then is harmless.
            stream.on('error', () => undefined);
            stream.cancel();
          }
        }
      }
    } finally {
      opts.signal?.removeEventListener('abort', onAbort);
      this.aborts.delete(ac);
    }
  }

  private event(ev: RawEvent, prevKv: boolean): WatchEvent {
    const prev = prevKv && ev.prev_kv ? this.kv(ev.prev_kv) : undefined;
    if (ev.type === 'Delete')
      return {
        type: 'delete',
        key: this.ks.decode(ev.kv.key),
        revision: BigInt(ev.kv.mod_revision),
        prev,
      };
    return { type: 'put', kv: this.kv(ev.kv), prev };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const ac of this.aborts) ac.abort();
    if (this.keepAlive) {
      const ka = this.keepAlive;
      this.keepAlive = undefined;
      for (const list of ka.waiters.values()) for (const w of list) w.reject(new ClosedError());
      ka.stream.removeAllListeners();
      ka.stream.on('error', () => undefined);
      ka.stream.cancel();
    }
    this.client.close();
  }
}

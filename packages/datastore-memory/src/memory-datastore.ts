import { AbortedError, type Clock } from '@calyx/core';
import {
  ClosedError,
  validateKey,
  validatePrefix,
  validateRevision,
  validateTtl,
  validateTxn,
  validateValue,
  type Datastore,
  type DatastoreBackend,
  type DeleteOptions,
  type KeyValue,
  type Lease,
  type LeaseId,
  type ListResult,
  type PutOptions,
  type ReadOptions,
  type Revision,
  type TxnRequest,
  type TxnResult,
  type UpdateOptions,
  type WatchMessage,
  type WatchOptions,
} from '@calyx/datastore';
import { MemoryEngine, type MemoryEngineOptions } from './engine.js';

/**
 * A client handle on a MemoryEngine. Handles close independently; the engine lives while
 * any handle is open. Errors, revisions and events follow etcd's semantics exactly (the
 * conformance suite proves it).
 */
export class MemoryDatastore implements Datastore {
  private closed = false;
  private readonly aborts = new Set<AbortController>();

  constructor(readonly engine: MemoryEngine = new MemoryEngine()) {
    if (engine.disposed) throw new ClosedError();
    engine.attach();
  }

  /** Another handle on the same data. */
  connect(): MemoryDatastore {
    if (this.closed) throw new ClosedError();
    return new MemoryDatastore(this.engine);
  }

  private check(): void {
    if (this.closed) throw new ClosedError();
  }

  // Every method is async so validation errors reject instead of throwing synchronously.

  async get(key: string, opts: ReadOptions = {}): Promise<KeyValue | undefined> {
    this.check();
    validateKey(key);
    validateRevision('revision', opts.revision);
    return this.engine.get(key, opts.revision);
  }

  async list(prefix: string, opts: ReadOptions = {}): Promise<ListResult> {
    this.check();
    validatePrefix(prefix);
    validateRevision('revision', opts.revision);
    return this.engine.list(prefix, opts.revision);
  }

  async create(key: string, value: string, opts: PutOptions = {}): Promise<KeyValue> {
    this.check();
    validateKey(key);
    validateValue(key, value);
    return this.engine.create(key, value, opts.lease);
  }

  async update(key: string, value: string, opts: UpdateOptions = {}): Promise<KeyValue> {
    this.check();
    validateKey(key);
    validateValue(key, value);
    validateRevision('expectedModRevision', opts.expectedModRevision);
    return this.engine.update(key, value, opts.expectedModRevision, opts.lease);
  }

  async put(key: string, value: string, opts: PutOptions = {}): Promise<KeyValue> {
    this.check();
    validateKey(key);
    validateValue(key, value);
    return this.engine.put(key, value, opts.lease);
  }

  async delete(key: string, opts: DeleteOptions = {}): Promise<KeyValue> {
    this.check();
    validateKey(key);
    validateRevision('expectedModRevision', opts.expectedModRevision);
    return this.engine.delete(key, opts.expectedModRevision);
  }

  async txn(req: TxnRequest): Promise<TxnResult> {
    this.check();
    validateTxn(req);
    return this.engine.txn(req);
  }

  async *watch(prefix: string, opts: WatchOptions = {}): AsyncGenerator<WatchMessage> {
    this.check();
    validatePrefix(prefix);
    validateRevision('fromRevision', opts.fromRevision);
    if (opts.signal?.aborted) return;
    const sub = this.engine.subscribe(prefix, opts.fromRevision, opts.prevKv ?? true);
    const ac = new AbortController();
    this.aborts.add(ac);
    const stop = (): void => sub.queue.abort();
    ac.signal.addEventListener('abort', stop, { once: true });
    opts.signal?.addEventListener('abort', stop, { once: true });
    try {
      for await (const m of sub.queue) yield m;
    } finally {
      this.engine.unsubscribe(sub);
      opts.signal?.removeEventListener('abort', stop);
      this.aborts.delete(ac);
    }
  }

  async revision(): Promise<Revision> {
    this.check();
    return this.engine.revision;
  }

  async compact(revision: Revision): Promise<void> {
    this.check();
    validateRevision('revision', revision);
    this.engine.compact(revision);
  }

  async grantLease(ttlSeconds: number): Promise<Lease> {
    this.check();
    validateTtl(ttlSeconds);
    return this.engine.grantLease(ttlSeconds);
  }

  async keepAliveLease(id: LeaseId): Promise<number> {
    this.check();
    return this.engine.keepAlive(id);
  }

  async revokeLease(id: LeaseId): Promise<void> {
    this.check();
    this.engine.revoke(id);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const ac of this.aborts) ac.abort(new AbortedError('datastore closed'));
    this.aborts.clear();
    this.engine.detach();
  }
}

export interface MemoryDatastoreOptions extends MemoryEngineOptions {
  clock?: Clock;
}

export function createMemoryDatastore(opts: MemoryDatastoreOptions = {}): MemoryDatastore {
  return new MemoryDatastore(new MemoryEngine(opts));
}

/**
 * `memory://` and `memory://<name>`: handles opened through one backend with the same name
 * share one engine (so a driver and agents in one process see the same data).
 */
export class MemoryBackend implements DatastoreBackend {
  readonly schemes = ['memory'] as const;
  private readonly engines = new Map<string, MemoryEngine>();

  constructor(private readonly defaults: MemoryEngineOptions = {}) {}

  async open(url: URL, opts: { clock?: Clock }): Promise<Datastore> {
    const name = url.hostname || 'default';
    let engine = this.engines.get(name);
    if (!engine || engine.disposed) {
      engine = new MemoryEngine({ ...this.defaults, ...(opts.clock ? { clock: opts.clock } : {}) });
      this.engines.set(name, engine);
    }
    return new MemoryDatastore(engine);
  }
}

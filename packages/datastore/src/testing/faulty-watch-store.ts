import { deferred, type Deferred } from '@calyx/core';
import type { Datastore, ListResult, ReadOptions, WatchMessage, WatchOptions } from '../types.js';

/**
 * Wraps a datastore so a test can open a gap in a watcher's view: `freeze()` ends every
 * active watch with a resync signal and holds new lists and watches until `thaw()`.
 * Everything else passes straight through.
 */
export class GapInjectingDatastore implements Datastore {
  private gate: Deferred<void> | undefined;
  private readonly active = new Set<{ sever(): void }>();

  constructor(readonly inner: Datastore) {}

  freeze(): void {
    this.gate ??= deferred();
    for (const w of this.active) w.sever();
  }

  thaw(): void {
    const g = this.gate;
    this.gate = undefined;
    g?.resolve();
  }

  get frozen(): boolean {
    return this.gate !== undefined;
  }

  private async pass(): Promise<void> {
    while (this.gate) await this.gate.promise;
  }

  get = (key: string, opts?: ReadOptions) => this.inner.get(key, opts);
  async list(prefix: string, opts?: ReadOptions): Promise<ListResult> {
    await this.pass();
    return this.inner.list(prefix, opts);
  }
  create = (...a: Parameters<Datastore['create']>) => this.inner.create(...a);
  update = (...a: Parameters<Datastore['update']>) => this.inner.update(...a);
  put = (...a: Parameters<Datastore['put']>) => this.inner.put(...a);
  delete = (...a: Parameters<Datastore['delete']>) => this.inner.delete(...a);
  txn = (...a: Parameters<Datastore['txn']>) => this.inner.txn(...a);
  revision = () => this.inner.revision();
  compact = (...a: Parameters<Datastore['compact']>) => this.inner.compact(...a);
  grantLease = (...a: Parameters<Datastore['grantLease']>) => this.inner.grantLease(...a);
  keepAliveLease = (...a: Parameters<Datastore['keepAliveLease']>) =>
    this.inner.keepAliveLease(...a);
  revokeLease = (...a: Parameters<Datastore['revokeLease']>) => this.inner.revokeLease(...a);
  close = () => this.inner.close();

  async *watch(prefix: string, opts: WatchOptions = {}): AsyncGenerator<WatchMessage> {
    await this.pass();
    const ac = new AbortController();
    opts.signal?.addEventListener('abort', () => ac.abort(), { once: true });
    let severed = false;
    const handle = {
      sever: () => {
        severed = true;
        ac.abort();
      },
    };
    this.active.add(handle);
    try {
      for await (const m of this.inner.watch(prefix, { ...opts, signal: ac.signal })) {
        if (severed) break;
        yield m;
      }
      if (severed && !opts.signal?.aborted)
        yield { type: 'resync', reason: 'compacted', compactRevision: 0n };
    } finally {
      this.active.delete(handle);
    }
  }
}

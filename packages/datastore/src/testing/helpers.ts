import type { Datastore, WatchMessage, WatchOptions } from '../types.js';

/** Rejects after `ms` with a message naming what was awaited. Never sleeps on success. */
export async function within<T>(ms: number, what: string, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)),
          ms,
        );
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Pull-style reader over a watch, for tests: `next()`, `take(n)`, `close()`. */
export class WatchReader {
  private readonly ac = new AbortController();
  private readonly it: AsyncIterator<WatchMessage>;
  ended = false;

  constructor(
    store: Datastore,
    prefix: string,
    opts: Omit<WatchOptions, 'signal'> = {},
    signal?: AbortSignal,
  ) {
    signal?.addEventListener('abort', () => this.ac.abort(), { once: true });
    this.it = store.watch(prefix, { ...opts, signal: this.ac.signal })[Symbol.asyncIterator]();
  }

  /** The next message, or undefined when the watch has ended. */
  async next(timeoutMs = 10_000): Promise<WatchMessage | undefined> {
    const r = await within(timeoutMs, 'a watch message', this.it.next());
    if (r.done) {
      this.ended = true;
      return undefined;
    }
    return r.value;
  }

  async take(n: number, timeoutMs = 10_000): Promise<WatchMessage[]> {
    const out: WatchMessage[] = [];
    while (out.length < n) {
      const m = await this.next(timeoutMs);
      if (!m) throw new Error(`watch ended after ${out.length} of ${n} messages`);
      out.push(m);
    }
    return out;
  }

  /** Waits for the end of the watch; fails if a message arrives instead. */
  async expectEnd(timeoutMs = 10_000): Promise<void> {
    const m = await this.next(timeoutMs);
    if (m)
      throw new Error(
        `expected the watch to end, got ${JSON.stringify(m, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v))}`,
      );
  }

  close(): void {
    this.ac.abort();
    void this.it.return?.();
  }
}

/** A compact view of a watch message for assertions: `put /k=v@rev` / `del /k@rev`. */
export function describeMessage(m: WatchMessage | undefined): string {
  if (!m) return 'end';
  if (m.type === 'put') return `put ${m.kv.key}=${m.kv.value}`;
  if (m.type === 'delete') return `del ${m.key}`;
  return `resync@${m.compactRevision}`;
}

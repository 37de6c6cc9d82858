import { AbortedError } from './errors.js';
import { systemClock, type Clock, type TimerHandle } from './clock.js';

/** Waits `ms` on `clock`; rejects with AbortedError when `signal` aborts first. */
export function sleep(
  ms: number,
  opts: { signal?: AbortSignal; clock?: Clock } = {},
): Promise<void> {
  const clock = opts.clock ?? systemClock;
  const { signal } = opts;
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(new AbortedError('sleep aborted', { cause: signal.reason }));
      return;
    }
    const onAbort = (): void => {
      clock.clearTimeout(handle);
      reject(new AbortedError('sleep aborted', { cause: signal?.reason }));
    };
    const handle = clock.setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Exponential backoff with full jitter: attempt 0 → up to `baseMs`, doubling to `maxMs`. */
export function backoffDelay(
  attempt: number,
  opts: { baseMs?: number; maxMs?: number; random?: () => number } = {},
): number {
  const base = opts.baseMs ?? 50;
  const max = opts.maxMs ?? 5_000;
  const random = opts.random ?? Math.random;
  const ceiling = Math.min(max, base * 2 ** Math.min(attempt, 30));
  return Math.floor(ceiling / 2 + (random() * ceiling) / 2);
}

/** A promise plus its resolve/reject, for hand-driven coordination. */
export interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
  reject(reason: unknown): void;
}

export function deferred<T = void>(): Deferred<T> {
  let resolve!: (v: T) => void;
  let reject!: (r: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/**
 * An unbounded async queue: producers `push`, one consumer iterates. `end()` finishes the
 * iteration after the queued items; `abort()` drops them and ends; `fail(e)` makes the read
 * after the queued items throw.
 */
export class AsyncQueue<T> implements AsyncIterable<T> {
  private items: T[] = [];
  private head = 0;
  private waiter: Deferred<void> | undefined;
  private ended = false;
  private error: unknown;
  private hasError = false;

  push(item: T): void {
    if (this.ended) return;
    this.items.push(item);
    this.wake();
  }

  end(): void {
    this.ended = true;
    this.wake();
  }

  /** Drops what is queued and ends: the consumer's next read finishes the iteration. */
  abort(): void {
    this.items = [];
    this.head = 0;
    this.end();
  }

  fail(error: unknown): void {
    if (this.ended) return;
    this.error = error;
    this.hasError = true;
    this.ended = true;
    this.wake();
  }

  get size(): number {
    return this.items.length - this.head;
  }

  get isEnded(): boolean {
    return this.ended;
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.resolve();
  }

  private take(): T {
    const item = this.items[this.head] as T;
    this.items[this.head] = undefined as T;
    this.head++;
    if (this.head >= 1024 && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }

  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    for (;;) {
      if (this.head < this.items.length) {
        yield this.take();
        continue;
      }
      if (this.ended) {
        if (this.hasError) throw this.error;
        return;
      }
      this.waiter = deferred();
      await this.waiter.promise;
    }
  }
}

/**
 * Runs `fn` whenever triggered, never concurrently: triggers while it runs coalesce into one
 * more run afterwards. A failed run is retried with backoff on `clock` (a new trigger resets
 * the backoff). `close()` stops it after the current run.
 */
export class SerialTask {
  private running: Promise<void> | undefined;
  private again = false;
  private closed = false;
  private failures = 0;
  private retryTimer: TimerHandle | undefined;

  constructor(
    private readonly fn: () => Promise<void>,
    private readonly opts: {
      clock?: Clock;
      onError?: (e: unknown, attempt: number) => void;
      retryBaseMs?: number;
      retryMaxMs?: number;
    } = {},
  ) {}

  trigger(): void {
    if (this.closed) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.loop();
  }

  private async loop(): Promise<void> {
    const clock = this.opts.clock ?? systemClock;
    do {
      this.again = false;
      if (this.retryTimer) {
        clock.clearTimeout(this.retryTimer);
        this.retryTimer = undefined;
      }
      try {
        await this.fn();
        this.failures = 0;
      } catch (e) {
        this.failures++;
        this.opts.onError?.(e, this.failures);
        if (!this.closed && !this.again) {
          const delay = backoffDelay(this.failures - 1, {
            baseMs: this.opts.retryBaseMs ?? 100,
            maxMs: this.opts.retryMaxMs ?? 10_000,
          });
          this.retryTimer = clock.setTimeout(() => this.trigger(), delay);
        }
      }
    } while (this.again && !this.closed);
    this.running = undefined;
  }

  /** Resolves when no run is in progress. */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.retryTimer) (this.opts.clock ?? systemClock).clearTimeout(this.retryTimer);
    await this.idle();
  }
}

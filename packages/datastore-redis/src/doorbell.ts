import type { Redis } from 'ioredis';
import { backoffDelay, sleep, type Logger } from '@calyx/core';

export interface StreamDoorbellOptions {
  /** A new dedicated connection (blocking reads tie it up). */
  connect: () => Redis;
  streamKey: string;
  blockMs: number;
  maxReconnectDelayMs: number;
  logger: Logger;
}

/**
 * One blocking read of a store's history stream, shared by all of a client's watches: it only
 * says "there is news" (an eventcount). Each watch reads its own entries without blocking on
 * the main connection, so a client holds one blocking connection however many watches it has
 * — instead of one per watch.
 *
 * A watch takes `seq` before it reads; when the read finds nothing it waits for `seq` to move
 * on. Every entry appended after the doorbell's cursor makes it ring after the append, so no
 * news is missed between a watch's read and its wait. On (re)start the doorbell rings once:
 * whatever was appended while it was not reading is news to someone.
 */
export class StreamDoorbell {
  private seqNo = 0;
  private readonly waiters = new Set<(rang: boolean) => void>();
  private running: Promise<void> | undefined;
  private readonly stop = new AbortController();
  private conn: Redis | undefined;

  constructor(private readonly opts: StreamDoorbellOptions) {}

  /** How many times it rang. */
  get seq(): number {
    return this.seqNo;
  }

  /**
   * Resolves true once it has rung after `seen` (at once if it already has), false after
   * `timeoutMs` or when `signal` aborts or the doorbell closes.
   */
  wait(seen: number, timeoutMs: number, signal: AbortSignal): Promise<boolean> {
    if (this.seqNo > seen) return Promise.resolve(true);
    if (signal.aborted || this.stop.signal.aborted) return Promise.resolve(false);
    this.running ??= this.run();
    return new Promise((resolve) => {
      const done = (rang: boolean) => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        this.waiters.delete(done);
        resolve(rang);
      };
      const timer = setTimeout(() => done(false), timeoutMs);
      const onAbort = () => done(false);
      signal.addEventListener('abort', onAbort, { once: true });
      this.waiters.add(done);
    });
  }

  private ring(): void {
    this.seqNo++;
    for (const done of [...this.waiters]) done(true);
  }

  private drop(): void {
    this.conn?.disconnect();
    this.conn = undefined;
  }

  private async run(): Promise<void> {
    const { streamKey, blockMs, logger } = this.opts;
    let cursor: string | undefined;
    for (let attempt = 0; !this.stop.signal.aborted;) {
      try {
        this.conn ??= this.opts.connect();
        if (cursor === undefined) {
          cursor = await this.lastId(this.conn);
          this.ring();
        }
        const reply = (await this.conn.call(
          'XREAD',
          'COUNT',
          '1',
          'BLOCK',
          String(blockMs),
          'STREAMS',
          streamKey,
          cursor,
        )) as [string, [string, unknown][]][] | null;
        attempt = 0;
        const first = reply?.[0]?.[1]?.[0]?.[0];
        if (!first) continue;
        // News up to `first`: ring at once (a single write is the common case). Then jump to
        // the stream's end, so a burst costs two reads rather than one per entry, and ring
        // again if that covered more.
        this.ring();
        cursor = await this.lastId(this.conn);
        if (cursor !== first) this.ring();
      } catch (e) {
        if (this.stop.signal.aborted) return;
        this.drop();
        cursor = undefined;
        const delay = backoffDelay(attempt++, {
          baseMs: 50,
          maxMs: this.opts.maxReconnectDelayMs,
        });
        // Once is a reconnect; again and again (say, a proxy that refuses blocking reads)
        // leaves every watch reading only at each quiet spell: worth an operator's eye.
        logger[attempt > 3 ? 'warn' : 'debug'](
          { err: (e as Error).message, retryInMs: delay, attempt },
          'watch doorbell interrupted; watches read at each quiet spell until it is back',
        );
        await sleep(delay, { signal: this.stop.signal }).catch(() => undefined);
      }
    }
  }

  /** The id of the stream's last entry (`0-0` when it is empty). */
  private async lastId(conn: Redis): Promise<string> {
    const last = (await conn.call('XREVRANGE', this.opts.streamKey, '+', '-', 'COUNT', '1')) as
      [string, unknown][] | null;
    return last?.[0]?.[0] ?? '0-0';
  }

  async close(): Promise<void> {
    this.stop.abort();
    this.drop();
    for (const done of [...this.waiters]) done(false);
    await this.running;
  }
}

import { describe, expect, it } from 'vitest';
import {
  AbortedError,
  AsyncQueue,
  ManualClock,
  MemoryLogger,
  backoffDelay,
  sleep,
} from './index.js';

describe('ManualClock', () => {
  it('fires due timers in time order, including ones scheduled while advancing', () => {
    const clock = new ManualClock(0);
    const fired: string[] = [];
    clock.setTimeout(() => fired.push('b@20'), 20);
    clock.setTimeout(() => {
      fired.push('a@10');
      clock.setTimeout(() => fired.push('c@15'), 5);
    }, 10);
    const cancelled = clock.setTimeout(() => fired.push('never'), 12);
    clock.clearTimeout(cancelled);
    clock.advance(19);
    expect(fired).toEqual(['a@10', 'c@15']);
    expect(clock.now()).toBe(19);
    clock.advance(1);
    expect(fired).toEqual(['a@10', 'c@15', 'b@20']);
    expect(clock.pendingTimers()).toBe(0);
  });
});

describe('sleep', () => {
  it('resolves when the clock reaches the deadline', async () => {
    const clock = new ManualClock(0);
    let done = false;
    const p = sleep(100, { clock }).then(() => (done = true));
    clock.advance(99);
    await Promise.resolve();
    expect(done).toBe(false);
    clock.advance(1);
    await p;
    expect(done).toBe(true);
  });

  it('rejects with AbortedError on abort and clears its timer', async () => {
    const clock = new ManualClock(0);
    const ac = new AbortController();
    const p = sleep(100, { clock, signal: ac.signal });
    ac.abort();
    await expect(p).rejects.toBeInstanceOf(AbortedError);
    expect(clock.pendingTimers()).toBe(0);
  });
});

describe('backoffDelay', () => {
  it('grows exponentially and stays within [ceiling/2, ceiling]', () => {
    expect(backoffDelay(0, { baseMs: 100, random: () => 0 })).toBe(50);
    expect(backoffDelay(0, { baseMs: 100, random: () => 1 })).toBe(100);
    expect(backoffDelay(3, { baseMs: 100, random: () => 1 })).toBe(800);
    expect(backoffDelay(30, { baseMs: 100, maxMs: 1000, random: () => 1 })).toBe(1000);
  });
});

describe('AsyncQueue', () => {
  it('delivers pushed items in order, then ends', async () => {
    const q = new AsyncQueue<number>();
    q.push(1);
    q.push(2);
    setTimeout(() => {
      q.push(3);
      q.end();
    }, 1);
    const got: number[] = [];
    for await (const n of q) got.push(n);
    expect(got).toEqual([1, 2, 3]);
  });

  it('throws the failure after delivering what was queued', async () => {
    const q = new AsyncQueue<number>();
    q.push(1);
    q.fail(new Error('boom'));
    const got: number[] = [];
    await expect(
      (async () => {
        for await (const n of q) got.push(n);
      })(),
    ).rejects.toThrow('boom');
    expect(got).toEqual([1]);
  });
});

describe('MemoryLogger', () => {
  it('records fields merged with child bindings', () => {
    const log = new MemoryLogger();
    log.child({ host: 'a' }).info({ n: 1 }, 'hello');
    expect(log.records).toEqual([{ level: 'info', msg: 'hello', fields: { host: 'a', n: 1 } }]);
  });
});

describe('SerialTask', () => {
  it('never runs concurrently and coalesces triggers into one more run', async () => {
    const { SerialTask, deferred } = await import('./index.js');
    let runs = 0;
    let active = 0;
    let gate = deferred<void>();
    const task = new SerialTask(async () => {
      active++;
      expect(active).toBe(1);
      runs++;
      await gate.promise;
      active--;
    });
    task.trigger();
    task.trigger();
    task.trigger();
    gate.resolve();
    gate = deferred<void>();
    gate.resolve();
    await task.idle();
    expect(runs).toBe(2);
    await task.close();
  });

  it('retries a failed run with backoff on its clock', async () => {
    const { SerialTask } = await import('./index.js');
    const clock = new ManualClock(0);
    let calls = 0;
    const errors: number[] = [];
    const task = new SerialTask(
      async () => {
        calls++;
        if (calls < 3) throw new Error('not yet');
      },
      { clock, onError: (_e, n) => errors.push(n), retryBaseMs: 100, retryMaxMs: 100 },
    );
    task.trigger();
    await task.idle();
    clock.advance(100);
    await task.idle();
    clock.advance(100);
    await task.idle();
    expect(calls).toBe(3);
    expect(errors).toEqual([1, 2]);
    expect(clock.pendingTimers()).toBe(0);
  });
});

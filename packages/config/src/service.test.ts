import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { deferred } from '@calyx/core';
import { runService } from './index.js';

/** A service whose start the test finishes (or fails), recording what happened. */
function fakeService() {
  const starting = deferred<void>();
  const events: string[] = [];
  return {
    events,
    starting,
    service: {
      start: async () => {
        events.push('start');
        await starting.promise;
        events.push('started');
      },
      stop: async () => {
        events.push('stop');
        // Like an agent's close(): an interrupted start gives up.
        starting.reject(new Error('stopped before the first reconcile'));
      },
    },
  };
}

const tick = () => new Promise((r) => setImmediate(r));

describe('runService', () => {
  it('runs until SIGTERM, then stops and exits 0', async () => {
    const signals = new EventEmitter();
    const f = fakeService();
    const code = runService(f.service, { signals });
    f.starting.resolve();
    await tick();
    expect(f.events).toEqual(['start', 'started']);
    signals.emit('SIGTERM');
    expect(await code).toBe(0);
    expect(f.events).toEqual(['start', 'started', 'stop']);
    expect(signals.listenerCount('SIGTERM') + signals.listenerCount('SIGINT')).toBe(0);
  });

  it('a signal during start stops cleanly: exit 0, not a start failure', async () => {
    const signals = new EventEmitter();
    const f = fakeService();
    const code = runService(f.service, { signals });
    await tick();
    signals.emit('SIGINT');
    expect(await code).toBe(0);
    expect(f.events).toEqual(['start', 'stop']);
  });

  it('a start that fails is stopped and exits 1', async () => {
    const signals = new EventEmitter();
    const f = fakeService();
    const code = runService(f.service, { signals });
    f.starting.reject(new Error('etcd unreachable'));
    expect(await code).toBe(1);
    expect(f.events).toEqual(['start', 'stop']);
  });

  it('a signal during start whose stop fails exits 1 without waiting for start', async () => {
    const signals = new EventEmitter();
    const code = runService(
      {
        start: () => new Promise<void>(() => undefined), // never settles
        stop: async () => {
          throw new Error('stuck');
        },
      },
      { signals },
    );
    await tick();
    signals.emit('SIGTERM');
    expect(await code).toBe(1);
  });

  it('exits 1 when stopping fails', async () => {
    const signals = new EventEmitter();
    const code = runService(
      {
        start: async () => undefined,
        stop: async () => {
          throw new Error('stuck');
        },
      },
      { signals },
    );
    await tick();
    signals.emit('SIGTERM');
    expect(await code).toBe(1);
  });
});

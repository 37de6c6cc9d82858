import { describe, expect, it } from 'vitest';
import { ManualClock } from '@calyx/core';
import {
  AlreadyExistsError,
  ConflictError,
  FencedDatastore,
  InvalidArgumentError,
  LeaderElection,
  NotFoundError,
  NotLeaderError,
  type Datastore,
  type LeaseId,
} from '@calyx/datastore';
import { interceptDatastore } from '@calyx/datastore/testing';
import { MemoryDatastore, MemoryEngine } from './index.js';

const tick = () => new Promise((r) => setImmediate(r));

/** A client whose keepalives never reach the store, though it believes they did: a zombie. */
function zombie(store: Datastore): Datastore {
  return interceptDatastore(store, () => ({ keepAliveLease: async (_id: LeaseId) => 30 }));
}

describe('LeaderElection and FencedDatastore', () => {
  const setup = () => {
    const clock = new ManualClock();
    const engine = new MemoryEngine({ clock });
    return { clock, a: new MemoryDatastore(engine), b: new MemoryDatastore(engine) };
  };

  it('elects one candidate; the other takes over within the TTL when the leader goes silent', async () => {
    const { clock, a, b } = setup();
    const key = '/calyx/v1/leader/driver';
    const ea = new LeaderElection(zombie(a), { key, id: 'driver-a', ttlSeconds: 5, clock });
    const eb = new LeaderElection(b, { key, id: 'driver-b', ttlSeconds: 5, clock });
    const la = await ea.campaign();
    let bElected = false;
    const lb = eb.campaign().then((l) => {
      bElected = true;
      return l;
    });
    await tick();
    expect(await eb.leader()).toBe('driver-a');
    const fencedA = new FencedDatastore(a, la.fence);
    await fencedA.put('/data/x', 'from a');

    // driver-a is paused: its keepalives are lost. Within the TTL nothing changes hands...
    for (let i = 0; i < 4; i++) {
      clock.advance(1000);
      await tick();
    }
    expect(bElected).toBe(false);
    // ...after it, driver-b is elected.
    clock.advance(1500);
    await tick();
    const won = await lb;
    expect(await eb.leader()).toBe('driver-b');
    expect(won.since).toBeGreaterThan(la.since);

    // driver-a wakes up believing its lease fresh: every kind of write is refused, nothing lands.
    expect(la.isFresh()).toBe(true);
    const rev = await b.revision();
    const attempts: Promise<unknown>[] = [
      fencedA.put('/data/x', 'late'),
      fencedA.create('/data/y', 'late'),
      fencedA.update('/data/x', 'late'),
      fencedA.delete('/data/x'),
      fencedA.txn({ compares: [], success: [{ type: 'put', key: '/data/z', value: 'late' }] }),
    ];
    for (const p of attempts) await expect(p).rejects.toBeInstanceOf(NotLeaderError);
    await expect(fencedA.put('/data/x', 'late')).rejects.toThrow(/the leader is driver-b/);
    expect(await b.revision()).toBe(rev);
    expect((await b.get('/data/x'))?.value).toBe('from a');
    // Reads are not fenced, a read-only transaction neither.
    const read = await fencedA.txn({ compares: [], success: [{ type: 'get', key: '/data/x' }] });
    expect(read.results[0]).toMatchObject({ type: 'get', kv: { value: 'from a' } });

    const fencedB = new FencedDatastore(b, won.fence);
    await fencedB.put('/data/x', 'from b');
    await won.resign();
    expect(await eb.leader()).toBeUndefined();
  });

  it('keeps the contract’s own errors apart from lost leadership', async () => {
    const { clock, a } = setup();
    const l = await new LeaderElection(a, {
      key: '/calyx/v1/leader/x',
      id: 'x',
      ttlSeconds: 5,
      clock,
    }).campaign();
    const f = new FencedDatastore(a, l.fence);
    const kv = await f.create('/k', '1');
    await expect(f.create('/k', '2')).rejects.toBeInstanceOf(AlreadyExistsError);
    await expect(f.update('/missing', '1')).rejects.toBeInstanceOf(NotFoundError);
    await expect(
      f.update('/k', '2', { expectedModRevision: kv.modRevision - 1n }),
    ).rejects.toBeInstanceOf(ConflictError);
    const failed = await f.txn({
      compares: [{ key: '/k', target: 'value', op: '=', value: 'nope' }],
      success: [{ type: 'put', key: '/k', value: '3' }],
      failure: [{ type: 'get', key: '/k' }],
    });
    expect(failed.succeeded).toBe(false);
    expect(failed.results).toEqual([{ type: 'get', kv: expect.objectContaining({ value: '1' }) }]);
    await expect(
      f.txn({ compares: [], success: [], failure: [{ type: 'put', key: '/k', value: 'x' }] }),
    ).rejects.toBeInstanceOf(InvalidArgumentError);
    // A stale lease (the writer knows it) fails before asking the store.
    clock.advance(6000);
    await tick();
    await expect(f.put('/k', 'x')).rejects.toBeInstanceOf(NotLeaderError);
  });
});

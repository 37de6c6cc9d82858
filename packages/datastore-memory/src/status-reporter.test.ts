import { describe, expect, it } from 'vitest';
import { ManualClock } from '@calyx/core';
import {
  ResourceClient,
  StatusReporter,
  UnavailableError,
  type Datastore,
  type EndpointReport,
} from '@calyx/datastore';
import { interceptDatastore } from '@calyx/datastore/testing';
import { keys, prefixes } from '@calyx/model';
import { MemoryDatastore, MemoryEngine } from './index.js';

const tick = async (n = 5) => {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
};

/** Counts transactions, so coalescing and batching can be asserted. */
function counting(store: Datastore): { store: Datastore; txns: () => number } {
  let txns = 0;
  const proxy = interceptDatastore(store, (inner) => ({
    txn: (req) => {
      txns++;
      return inner.txn(req);
    },
  }));
  return { store: proxy, txns: () => txns };
}

const up: EndpointReport = { status: 'up', reason: '' };
const down = (reason: string): EndpointReport => ({ status: 'down', reason });

describe('StatusReporter', () => {
  const setup = () => {
    const clock = new ManualClock();
    const engine = new MemoryEngine({ clock });
    const raw = new MemoryDatastore(engine);
    const { store, txns } = counting(raw);
    const client = new ResourceClient(raw);
    const statuses = async () =>
      new Map(
        (
          await client.list('EndpointStatus', { prefix: `${prefixes.hostStatus('h1')}endpoint/` })
        ).items.map((i) => [i.value.endpointId, `${i.value.status}:${i.value.reason}`]),
      );
    return { clock, store, txns, client, statuses };
  };

  it('writes liveness on a lease that expires within the TTL once the agent is gone', async () => {
    const { clock, store, client } = setup();
    const r = new StatusReporter(store, { hostname: 'h1', ttlSeconds: 3, clock });
    await r.start();
    const live = await client.get('HostStatus', keys.hostStatus('h1'));
    expect(live?.value).toMatchObject({ host: 'h1', inSync: false, endpoints: 0 });
    expect(live?.lease).not.toBeNull();
    // Kept alive while running…
    for (let i = 0; i < 10; i++) {
      clock.advance(1_000);
      await tick();
    }
    expect(await client.get('HostStatus', keys.hostStatus('h1'))).toBeDefined();
    // …left to expire (not revoked) after close.
    await r.close();
    expect(await client.get('HostStatus', keys.hostStatus('h1'))).toBeDefined();
    clock.advance(3_001);
    await tick();
    expect(await client.get('HostStatus', keys.hostStatus('h1'))).toBeUndefined();
  });

  it('coalesces reports within the flush interval into one transaction, writing only changes', async () => {
    const { clock, store, txns, statuses, client } = setup();
    const r = new StatusReporter(store, { hostname: 'h1', clock, flushIntervalMs: 100 });
    await r.start();
    const before = txns();
    r.report(new Map([['p1', down('interface missing')]]), { inSync: true });
    r.report(
      new Map([
        ['p1', up],
        ['p2', down('admin down')],
      ]),
      { inSync: true },
    );
    r.report(
      new Map([
        ['p1', up],
        ['p2', up],
        ['p3', up],
      ]),
      { inSync: true },
    );
    clock.advance(100);
    await r.flush();
    expect(txns() - before).toBe(1);
    expect(await statuses()).toEqual(
      new Map([
        ['p1', 'up:'],
        ['p2', 'up:'],
        ['p3', 'up:'],
      ]),
    );
    expect((await client.get('HostStatus', keys.hostStatus('h1')))?.value).toMatchObject({
      inSync: true,
      endpoints: 3,
    });
    // The same picture again writes nothing.
    const after = txns();
    r.report(
      new Map([
        ['p1', up],
        ['p2', up],
        ['p3', up],
      ]),
      { inSync: true },
    );
    clock.advance(100);
    await r.flush();
    expect(txns()).toBe(after);
    // A departed endpoint's record is deleted; a change is written.
    r.report(
      new Map([
        ['p1', { status: 'error', reason: 'iptables-restore failed' }],
        ['p2', up],
      ]),
      {
        inSync: true,
      },
    );
    clock.advance(100);
    await r.flush();
    expect(await statuses()).toEqual(
      new Map([
        ['p1', 'error:iptables-restore failed'],
        ['p2', 'up:'],
      ]),
    );
    await r.close();
  });

  it('splits large changes into transactions of at most maxOpsPerTxn operations', async () => {
    const { clock, store, txns, statuses } = setup();
    const r = new StatusReporter(store, { hostname: 'h1', clock, maxOpsPerTxn: 64 });
    await r.start();
    const before = txns();
    r.report(new Map(Array.from({ length: 200 }, (_, i) => [`p${i}`, up] as const)), {
      inSync: true,
    });
    await r.flush();
    expect(txns() - before).toBe(Math.ceil(201 / 64));
    expect((await statuses()).size).toBe(200);
    await r.close();
  });

  it('starts from what is in the datastore: a restarted agent deletes statuses of endpoints that left', async () => {
    const { clock, store, statuses } = setup();
    const a = new StatusReporter(store, { hostname: 'h1', clock });
    await a.start();
    a.report(
      new Map([
        ['p1', up],
        ['p2', up],
      ]),
      { inSync: true },
    );
    await a.flush();
    await a.close();
    const b = new StatusReporter(store, { hostname: 'h1', clock });
    await b.start();
    b.report(new Map([['p2', up]]), { inSync: true });
    await b.flush();
    expect(await statuses()).toEqual(new Map([['p2', 'up:']]));
    await b.close();
  });

  it('takes a new lease and rewrites liveness when its lease was lost', async () => {
    const { clock, store, client } = setup();
    const r = new StatusReporter(store, { hostname: 'h1', clock, ttlSeconds: 3 });
    await r.start();
    const first = (await client.get('HostStatus', keys.hostStatus('h1')))!.lease!;
    await store.revokeLease(first);
    expect(await client.get('HostStatus', keys.hostStatus('h1'))).toBeUndefined();
    clock.advance(1_000); // the next keepalive finds the lease gone
    await tick(20);
    clock.advance(100);
    await r.flush();
    const again = await client.get('HostStatus', keys.hostStatus('h1'));
    expect(again?.lease).not.toBeNull();
    expect(again?.lease).not.toBe(first);
    await r.close({ revoke: true });
    expect(await client.get('HostStatus', keys.hostStatus('h1'))).toBeUndefined();
  });

  it('starts while the datastore is unreachable and reports once it is back', async () => {
    const { clock, store, client, statuses } = setup();
    let down = true;
    const unreachable = () => Promise.reject(new UnavailableError('etcd is down'));
    const flaky = interceptDatastore(store, (inner) => ({
      list: (...a) => (down ? unreachable() : inner.list(...a)),
      txn: (...a) => (down ? unreachable() : inner.txn(...a)),
      grantLease: (...a) => (down ? unreachable() : inner.grantLease(...a)),
      keepAliveLease: (...a) => (down ? unreachable() : inner.keepAliveLease(...a)),
    }));
    const errors: unknown[] = [];
    const r = new StatusReporter(flaky, { hostname: 'h1', clock, onError: (e) => errors.push(e) });
    await r.start(); // does not throw
    r.report(new Map([['p1', up]]), { inSync: true });
    expect(errors.length).toBeGreaterThan(0);
    down = false;
    for (let i = 0; i < 50 && !(await client.get('HostStatus', keys.hostStatus('h1'))); i++) {
      clock.advance(1_000);
      await tick(10);
    }
    await r.flush();
    expect(await statuses()).toEqual(new Map([['p1', 'up:']]));
    expect((await client.get('HostStatus', keys.hostStatus('h1')))?.value.inSync).toBe(true);
    await r.close({ revoke: true });
  });

  it('keeps going when a record it wrote was deleted by someone else', async () => {
    const { clock, store, client, statuses } = setup();
    const r = new StatusReporter(store, { hostname: 'h1', clock });
    await r.start();
    r.report(
      new Map([
        ['p1', up],
        ['p2', up],
      ]),
      { inSync: true },
    );
    await r.flush();
    await client.delete('EndpointStatus', keys.endpointStatus('h1', 'p2')); // e.g. calyxctl
    r.report(new Map([['p1', down('interface tapp1 is down')]]), { inSync: true });
    await r.flush();
    expect(await statuses()).toEqual(new Map([['p1', 'down:interface tapp1 is down']]));
    await r.close({ revoke: true });
  });

  it('writes the host record it snapshotted, and catches up with a report made meanwhile', async () => {
    const { clock, store, client } = setup();
    let releaseTxn: (() => void) | undefined;
    const slow = interceptDatastore(store, (inner) => ({
      txn: async (req) => {
        if (releaseTxn === undefined) await new Promise<void>((res) => (releaseTxn = res));
        return inner.txn(req);
      },
    }));
    const r = new StatusReporter(slow, { hostname: 'h1', clock, flushIntervalMs: 0 });
    const started = r.start();
    r.report(new Map([['p1', up]]), { inSync: true }); // lands while the first flush commits
    while (!releaseTxn) await tick();
    releaseTxn();
    await started;
    clock.advance(0);
    await r.flush();
    const host = await client.get('HostStatus', keys.hostStatus('h1'));
    expect(host?.value).toMatchObject({ inSync: true, endpoints: 1 });
    r.report(new Map([['p1', up]]), { inSync: false });
    clock.advance(0);
    await r.flush();
    expect((await client.get('HostStatus', keys.hostStatus('h1')))?.value.inSync).toBe(false);
    await r.close({ revoke: true });
  });
});

import { ManualClock } from '@calyx/core';
import { runConformanceSuite } from '@calyx/datastore/testing';
import { describe, expect, it } from 'vitest';
import { Container } from 'inversify';
import {
  DATASTORE,
  LeaseKeeper,
  RESOURCE_CLIENT,
  NotFoundError,
  ResourceCache,
  ResourceClient,
  createDatastore,
  datastoreModule,
} from '@calyx/datastore';
import { MemoryBackend, MemoryDatastore, MemoryEngine, createMemoryDatastore } from './index.js';

const clocks = new WeakMap<object, ManualClock>();

runConformanceSuite({
  name: 'memory',
  async open() {
    const clock = new ManualClock();
    const engine = new MemoryEngine({ clock });
    clocks.set(engine, clock);
    return new MemoryDatastore(engine);
  },
  async connect(store) {
    return (store as MemoryDatastore).connect();
  },
  advanceTime(store, ms) {
    clocks.get((store as MemoryDatastore).engine)!.advance(ms);
  },
  propertyRuns: 100,
});

describe('memory engine specifics', () => {
  it('auto-compacts history beyond the retained window', async () => {
    const store = createMemoryDatastore({ retainRevisions: 10 });
    const first = await store.put('/k', '0');
    for (let i = 1; i <= 30; i++) await store.put('/k', String(i));
    await expect(store.get('/k', { revision: first.modRevision })).rejects.toThrow(/compacted/);
    const rev = await store.revision();
    expect((await store.get('/k', { revision: rev - 5n }))?.value).toBe('25');
    await store.close();
  });

  it('stops lease timers when the last handle closes', async () => {
    const clock = new ManualClock();
    const store = createMemoryDatastore({ clock });
    await store.grantLease(5);
    expect(clock.pendingTimers()).toBe(1);
    const other = store.connect();
    await store.close();
    expect(clock.pendingTimers()).toBe(1);
    await other.close();
    expect(clock.pendingTimers()).toBe(0);
  });

  it('opens memory:// URLs through createDatastore, sharing data by name', async () => {
    const backend = new MemoryBackend();
    const a = await createDatastore('memory://demo', { backends: [backend] });
    const b = await createDatastore('memory://demo', { backends: [backend] });
    const c = await createDatastore('memory://other', { backends: [backend] });
    await a.put('/x', 'shared');
    expect((await b.get('/x'))?.value).toBe('shared');
    expect(await c.get('/x')).toBeUndefined();
    await expect(createDatastore('etcd://localhost:2379', { backends: [backend] })).rejects.toThrow(
      "no datastore backend for 'etcd://localhost:2379' (supported: memory://)",
    );
    await Promise.all([a.close(), b.close(), c.close()]);
  });
});

describe('LeaseKeeper over the memory store', () => {
  it('keeps a lease alive, reports freshness, and signals loss', async () => {
    const clock = new ManualClock();
    const store = createMemoryDatastore({ clock });
    const keeper = new LeaseKeeper(store, { ttlSeconds: 3, clock });
    const id = await keeper.start();
    await store.put('/alive', 'x', { lease: id });
    for (let i = 0; i < 10; i++) {
      clock.advance(1000);
      await new Promise((r) => setImmediate(r));
    }
    expect((await store.get('/alive'))?.value).toBe('x');
    expect(keeper.isFresh(1000)).toBe(true);
    // Someone else revokes it: the next keepalive notices.
    await store.revokeLease(id);
    clock.advance(1000);
    await expect(keeper.lost).resolves.toBe('expired');
    expect(keeper.isFresh()).toBe(false);
    await keeper.close();
    await store.close();
  });

  it('revokes on close, deleting the attached keys', async () => {
    const store = createMemoryDatastore({ clock: new ManualClock() });
    const keeper = new LeaseKeeper(store, { ttlSeconds: 30 });
    const id = await keeper.start();
    await store.put('/mine', 'x', { lease: id });
    await keeper.close();
    expect(await store.get('/mine')).toBeUndefined();
    await store.close();
  });
});

describe('dependency injection', () => {
  it('binds the datastore and a resource client through datastoreModule', async () => {
    const store = createMemoryDatastore();
    const container = new Container();
    container.load(datastoreModule(store));
    expect(container.get(DATASTORE)).toBe(store);
    const client = container.get<ResourceClient>(RESOURCE_CLIENT);
    await client.create('Network', { id: 'n1' });
    expect((await store.get('/calyx/v1/network/n1'))?.value).toContain('"id":"n1"');
    await store.close();
  });
});

describe('typed resources over the memory store', () => {
  it('a transaction can require another record to exist at commit time, writing nothing if not', async () => {
    const store = createMemoryDatastore();
    const client = new ResourceClient(store);
    await client.create('Network', { id: 'n1' });
    const ok = await client
      .txn()
      .requireExists('Network', '/calyx/v1/network/n1')
      .create('Network', { id: 'n2' })
      .commit();
    expect(ok).toBe(await store.revision());
    const before = await store.revision();
    const refused = client
      .txn()
      .create('Network', { id: 'n3' })
      .requireExists('Network', '/calyx/v1/network/gone')
      .commit();
    await expect(refused).rejects.toThrow(NotFoundError);
    await expect(refused).rejects.toMatchObject({ key: '/calyx/v1/network/gone' });
    expect(await store.revision()).toBe(before);
    expect(await store.get('/calyx/v1/network/n3')).toBeUndefined();
  });

  it('the cache knows the revision that last changed each resource', async () => {
    const store = createMemoryDatastore();
    const client = new ResourceClient(store);
    const a = await client.create('Network', { id: 'n1' });
    const cache = new ResourceCache();
    cache.apply([{ type: 'put', key: a.key, kv: (await store.get(a.key))! }]);
    expect(cache.modRevisionOf('Network', 'n1')).toBe(a.modRevision);
    const b = await client.update('Network', { id: 'n1', mtu: 1400 });
    cache.apply([{ type: 'put', key: b.key, kv: (await store.get(b.key))! }]);
    expect(cache.modRevisionOf('Network', 'n1')).toBe(b.modRevision);
    expect(cache.modRevisionOf('Network', 'nope')).toBeUndefined();
  });
});

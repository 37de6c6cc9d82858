import { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { MemoryLogger, sleep } from '@calyx/core';
import { describeIntegration, eventually } from '@calyx/core/testing';
import {
  CompactedError,
  Syncer,
  UnavailableError,
  type SyncerMessage,
  type WatchEvent,
} from '@calyx/datastore';
import { WatchReader, describeMessage, within } from '@calyx/datastore/testing';
import { TcpProxy, startRedis, type StartedRedis } from '@calyx/testbed';
import { RedisDatastore, type RedisDatastoreOptions } from './index.js';

describeIntegration('redis adapter under faults', { commands: ['redis-server'] }, () => {
  let redis: StartedRedis;
  const open: RedisDatastore[] = [];
  const client = (
    port: number,
    namespace: string,
    extra: Partial<RedisDatastoreOptions> = {},
  ): RedisDatastore => {
    const s = new RedisDatastore({
      redis: { host: '127.0.0.1', port },
      namespace,
      maxReconnectDelayMs: 200,
      ...extra,
    });
    open.push(s);
    return s;
  };
  const revisionOf = (e: WatchEvent) => (e.type === 'put' ? e.kv.modRevision : e.revision);

  beforeAll(async () => {
    redis = await startRedis();
  }, 30_000);
  afterAll(async () => {
    for (const s of open) await s.close();
    await redis?.stop();
  });

  it('delivers a 20,000-event catch-up exactly once and in order across a cut connection', async () => {
    const total = 20_000;
    const writer = client(redis.port, 'replay');
    const from = (await writer.revision()) + 1n;
    const pad = 'x'.repeat(500);
    for (let i = 0; i < total; i += 100)
      await Promise.all(
        Array.from({ length: 100 }, (_, j) =>
          writer.put(`/e/${String(i + j).padStart(5, '0')}`, `${i + j}:${pad}`),
        ),
      );
    const last = await writer.revision();
    expect(last - from + 1n).toBe(BigInt(total));
    const proxy = await TcpProxy.start({ port: redis.port });
    try {
      const logger = new MemoryLogger();
      const reader = client(proxy.port, 'replay', { logger });
      await reader.revision();
      const seen: WatchEvent[] = [];
      let cutDone = false;
      let beforeCut = 0;
      const ac = new AbortController();
      const watching = (async () => {
        for await (const m of reader.watch('/e/', { fromRevision: from, signal: ac.signal })) {
          if (m.type === 'resync') throw new Error('unexpected resync');
          seen.push(m);
          if (!cutDone) beforeCut++;
          if (revisionOf(m) === last) return;
        }
      })();
      // The catch-up comes in replies of up to 1,000 revisions (~0.6 MB here): the connection
      // drops in the middle of the fifth. What the client had not parsed is in no buffer any
      // more and must be asked for again from exactly the right revision.
      await within(30_000, 'part of the catch-up', proxy.cutAfterBytesToClient(2_500_000));
      cutDone = true;
      await within(60_000, 'the whole catch-up', watching);
      ac.abort();
      // The cut one, then its reconnection (the catch-up reads on the main connection; the
      // doorbell's own connection only opens once a watch has caught up and waits).
      expect(proxy.connections).toBeGreaterThan(1);
      expect(beforeCut).toBeGreaterThan(0);
      expect(beforeCut).toBeLessThan(total);
      expect(seen).toHaveLength(total);
      const revs = seen.map(revisionOf);
      for (let i = 0; i < revs.length; i++) expect(revs[i]).toBe(from + BigInt(i));
      expect(new Set(seen.map((e) => (e.type === 'put' ? e.kv.key : e.key))).size).toBe(total);
      expect(
        logger.records.some(
          (r) => r.msg === 'watch interrupted; resuming from the last delivered revision',
        ),
      ).toBe(true);
    } finally {
      await proxy.close();
    }
  }, 120_000);

  it('expires a lease with delete events while no client writes, or is even connected', async () => {
    const owner = client(redis.port, 'expiry');
    const lease = await owner.grantLease(1);
    await owner.put('/l/a', 'x', { lease: lease.id });
    await owner.put('/l/b', 'y', { lease: lease.id });
    await owner.put('/l/keep', 'z');
    const from = (await owner.revision()) + 1n;
    // The owner goes away without revoking: nobody keeps the lease alive, nobody writes.
    await owner.close();
    await sleep(1500);
    // The first client to connect sweeps what expired while nobody was there.
    const watcher = client(redis.port, 'expiry');
    const w = new WatchReader(watcher, '/l/', { fromRevision: from });
    try {
      const dels = await w.take(2, 5000);
      expect(dels.map(describeMessage)).toEqual(['del /l/a', 'del /l/b']);
      expect(new Set(dels.map((m) => (m.type === 'delete' ? m.revision : 0n))).size).toBe(1);
      expect((await watcher.list('/l/')).items.map((kv) => kv.key)).toEqual(['/l/keep']);
    } finally {
      w.close();
    }
    // And while a client is connected but idle, its sweeper expires leases on time.
    const lease2 = await watcher.grantLease(1);
    await watcher.put('/l/c', 'x', { lease: lease2.id });
    const w2 = new WatchReader(watcher, '/l/', { fromRevision: (await watcher.revision()) + 1n });
    try {
      const t0 = Date.now();
      expect(describeMessage(await w2.next(5000))).toBe('del /l/c');
      // The 1 s TTL, the 500 ms sweep, and room for a loaded machine.
      expect(Date.now() - t0).toBeLessThan(2500);
    } finally {
      w2.close();
    }
  }, 30_000);

  it('turns trimmed history into the resync signal and CompactedError', async () => {
    const s = client(redis.port, 'trim', { historyRevisions: 100 });
    const from = (await s.revision()) + 1n;
    for (let i = 0; i < 300; i++) await s.put('/t/k', String(i));
    const end = await s.revision();
    const w = new WatchReader(s, '/t/', { fromRevision: from });
    const m = await w.next(5000);
    expect(m?.type).toBe('resync');
    expect(m?.type === 'resync' && m.compactRevision).toBeGreaterThan(end - 120n);
    await w.expectEnd(5000);
    await expect(s.get('/t/k', { revision: from })).rejects.toBeInstanceOf(CompactedError);
    // Within the bound, history is there.
    expect((await s.get('/t/k', { revision: end - 50n }))?.value).toBe('249');
    const w2 = new WatchReader(s, '/t/', { fromRevision: end - 49n });
    try {
      const got = await w2.take(50, 5000);
      expect(got.map(describeMessage)).toEqual(
        Array.from({ length: 50 }, (_, i) => `put /t/k=${250 + i}`),
      );
    } finally {
      w2.close();
    }
  });

  it('ends a watch with resync when the history it delivered is lost or rewritten', async () => {
    /** Loses the store, as a restart without persistence does (or, for its last writes, a failover to a replica that had not received them). */
    const lose = async (namespace: string) => {
      const raw = new Redis({ host: '127.0.0.1', port: redis.port });
      try {
        await raw.del(...(await raw.keys(`{${namespace}}:*`)));
      } finally {
        raw.disconnect();
      }
    };
    for (const [namespace, rewritten] of [
      // The store stays behind the watch: noticed at the next quiet spell.
      ['behind', 1],
      // The store is written past the watch's position while it waits: the first new
      // entry does not follow the one the watch saw last.
      ['rewritten', 12],
    ] as const) {
      const writer = client(redis.port, namespace);
      const from = (await writer.revision()) + 1n;
      for (let i = 0; i < 5; i++) await writer.put(`/r/${i}`, 'v');
      const watcher = client(redis.port, namespace, { watchBlockMs: 300 });
      const w = new WatchReader(watcher, '/r/', { fromRevision: from });
      try {
        expect(await w.take(5, 5000)).toHaveLength(5);
        await lose(namespace);
        for (let i = 0; i < rewritten; i++) await writer.put(`/r/new-${i}`, 'v');
        expect(describeMessage(await w.next(5000)), namespace).toMatch(/^resync/);
        await w.expectEnd(5000);
      } finally {
        w.close();
      }
    }
  });

  it('re-lists exactly the differences when the history a cut-off syncer missed was trimmed', async () => {
    // A short history: what the syncer misses while cut off is gone when it comes back.
    const direct = client(redis.port, 'gap', { historyRevisions: 16 });
    for (const k of ['same', 'changed', 'deleted', 'recreated']) await direct.put(`/s/${k}`, '1');
    const proxy = await TcpProxy.start({ port: redis.port });
    const syncer = new Syncer(client(proxy.port, 'gap'), {
      prefixes: ['/s/'],
      retryBaseMs: 20,
      retryMaxMs: 200,
    });
    const messages = syncer[Symbol.asyncIterator]();
    /** Syncer messages up to the next in-sync, as `put k=v` / `del k` lines and their types. */
    const untilInSync = async () => {
      const lines: string[] = [];
      const types = new Set<SyncerMessage['type']>();
      for (let m: SyncerMessage | undefined; m?.type !== 'in-sync';) {
        const r = await within(20_000, 'a syncer message', messages.next());
        if (r.done) throw new Error('syncer ended');
        m = r.value;
        types.add(m.type);
        if (m.type === 'changes')
          for (const c of m.changes)
            lines.push(c.type === 'put' ? `put ${c.key}=${c.kv.value}` : `del ${c.key}`);
      }
      return { lines, types };
    };
    try {
      await untilInSync();
      proxy.cut({ stayDown: true });
      // What it misses: null deletes. The churn elsewhere pushes all of it out of the history.
      const missed: [string, string | null][] = [
        ['/s/changed', '2'],
        ['/s/deleted', null],
        ['/s/recreated', null],
        ['/s/recreated', '1'],
        ['/s/new', '1'],
        ...Array.from({ length: 40 }, (_, i): [string, string] => ['/other/churn', `${i}`]),
        ['/s/changed', '3'],
      ];
      for (const [key, value] of missed)
        await (value === null ? direct.delete(key) : direct.put(key, value));
      proxy.restore();
      const after = await untilInSync();
      expect(after.types.has('resyncing')).toBe(true);
      const net = ['del /s/deleted', 'put /s/changed=3', 'put /s/new=1', 'put /s/recreated=1'];
      expect(after.lines.sort()).toEqual(net);
      await direct.put('/s/after', 'x');
      const live = await within(20_000, 'a live change', messages.next());
      expect(live.value).toMatchObject({ type: 'changes', changes: [{ key: '/s/after' }] });
    } finally {
      await syncer.close();
      await proxy.close();
    }
  }, 60_000);

  it('fails a write whose answer is lost with UnavailableError and never applies it twice', async () => {
    const proxy = await TcpProxy.start({ port: redis.port });
    try {
      // No sweeper: the next reply on this client's connection is the write's.
      const s = client(proxy.port, 'lost', { leaseSweepIntervalMs: 0 });
      const direct = client(redis.port, 'lost');
      const before = await s.revision();
      const cut = proxy.cutAfterBytesToClient(1);
      await expect(s.create('/x/once', 'v')).rejects.toBeInstanceOf(UnavailableError);
      await cut;
      // The write ran on the server; after the reconnect nothing sends it again.
      await eventually(async () => (await s.revision()) > before, { what: 'a reconnect' });
      await sleep(300);
      expect(await direct.revision()).toBe(before + 1n);
      expect(await direct.get('/x/once')).toMatchObject({ value: 'v', version: 1n });
      // While Redis cannot be reached, calls fail fast instead of hanging.
      proxy.cut({ stayDown: true });
      const t0 = Date.now();
      await expect(s.put('/x/down', 'v')).rejects.toBeInstanceOf(UnavailableError);
      expect(Date.now() - t0).toBeLessThan(3000);
      proxy.restore();
      await eventually(() => s.put('/x/up', 'v').then(() => true), { what: 'writes again' });
    } finally {
      await proxy.close();
    }
  }, 30_000);
});

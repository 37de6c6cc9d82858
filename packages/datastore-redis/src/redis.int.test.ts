import { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeIntegration, eventually } from '@calyx/core/testing';
import { WatchReader } from '@calyx/datastore/testing';
import type { KeyValue, WatchMessage } from '@calyx/datastore';
import { startRedis, type StartedRedis } from '@calyx/testbed';
import { RedisDatastore, type RedisDatastoreOptions } from './index.js';

describeIntegration(
  'redis adapter: storage layout and pinned lists',
  { commands: ['redis-server'] },
  () => {
    let redis: StartedRedis;
    let raw: Redis;
    const open: RedisDatastore[] = [];
    const client = (namespace: string, extra: Partial<RedisDatastoreOptions> = {}) => {
      const s = new RedisDatastore({
        redis: { host: '127.0.0.1', port: redis.port },
        namespace,
        ...extra,
      });
      open.push(s);
      return s;
    };
    beforeAll(async () => {
      redis = await startRedis();
      raw = new Redis({ host: '127.0.0.1', port: redis.port });
    }, 30_000);
    afterAll(async () => {
      for (const s of open) await s.close();
      raw?.disconnect();
      await redis?.stop();
    });

    it('lists many pages at one revision while writers change the prefix', async () => {
      const s = client('pinned', { pageSize: 50 });
      const n = 2000;
      for (let i = 0; i < n; i += 100)
        await s.txn({
          compares: [],
          success: Array.from({ length: 100 }, (_, j) => ({
            type: 'put' as const,
            key: `/p/${String(i + j).padStart(5, '0')}`,
            value: '0',
          })),
        });
      const start = await s.list('/p/');
      // Writers rewrite, delete and create keys all over the range while the list pages along.
      let writing = true;
      const writers = [0, 1, 2, 3].map(async (w) => {
        for (let i = 0; writing; i++) {
          const k = `/p/${String((i * 7919 + w * 1013) % (n + 200)).padStart(5, '0')}`;
          if (i % 3 === 0) await s.delete(k).catch(() => undefined);
          else await s.put(k, `${w}.${i}`);
        }
      });
      const lists = [];
      for (let i = 0; i < 5; i++) lists.push(await s.list('/p/'));
      writing = false;
      await Promise.all(writers);
      // The state at each list's revision, rebuilt from the snapshot and the event stream.
      const events: WatchMessage[] = [];
      const end = await s.revision();
      for await (const m of s.watch('/p/', { fromRevision: start.revision + 1n })) {
        events.push(m);
        const rev = m.type === 'put' ? m.kv.modRevision : m.type === 'delete' ? m.revision : 0n;
        if (rev >= end) break;
      }
      for (const l of lists) {
        const state = new Map<string, KeyValue>(start.items.map((kv) => [kv.key, kv]));
        for (const m of events) {
          if (m.type === 'put' && m.kv.modRevision <= l.revision) state.set(m.kv.key, m.kv);
          if (m.type === 'delete' && m.revision <= l.revision) state.delete(m.key);
        }
        const expected = [...state.values()].sort((a, b) => (a.key < b.key ? -1 : 1));
        expect(l.revision).toBeGreaterThan(start.revision);
        expect(l.items).toEqual(expected);
      }
      // Each list paged along while the writers moved the store on (so pages were undone).
      for (let i = 1; i < lists.length; i++)
        expect(lists[i]!.revision - lists[i - 1]!.revision).toBeGreaterThan(10n);
      // Reads at a past revision see the same.
      const again = await s.list('/p/', { revision: lists[0]!.revision });
      expect(again).toEqual(lists[0]);
    }, 60_000);

    it('keeps every key of a store under its hash tag and leaves nothing behind', async () => {
      const s = client('layout');
      const lease = await s.grantLease(60);
      await s.put('/a/{braces}/x', 'v', { lease: lease.id });
      await s.put('/a/y', 'v');
      await s.txn({ compares: [], success: [{ type: 'delete', key: '/a/y' }] });
      const keys = await raw.keys('*layout*');
      expect(keys.every((k) => k.startsWith('{layout}:'))).toBe(true);
      expect(keys.sort()).toEqual(
        [
          '{layout}:meta',
          '{layout}:idx',
          '{layout}:log',
          '{layout}:leases',
          '{layout}:lttl',
          `{layout}:lk:${lease.id}`,
          '{layout}:k:/a/{braces}/x',
        ].sort(),
      );
      await s.revokeLease(lease.id);
      expect((await raw.keys('*layout*')).sort()).toEqual(['{layout}:meta', '{layout}:log'].sort());
    });

    it('serves every watch of a client over one blocking connection, and survives losing it', async () => {
      const clients = async () => ((await raw.call('CLIENT', 'LIST')) as string).trim().split('\n');
      const base = (await clients()).length;
      const s = client('many', { watchBlockMs: 300 });
      const writer = client('many');
      const from = (await Promise.all([s.revision(), writer.revision()]))[1] + 1n;
      const readers = Array.from(
        { length: 20 },
        (_, i) => new WatchReader(s, `/m/${i}/`, { fromRevision: from }),
      );
      const valueOf = (m: WatchMessage | undefined) =>
        m?.type === 'put' ? `${m.kv.key}=${m.kv.value}` : String(m?.type);
      try {
        for (let i = 0; i < 20; i++) await writer.put(`/m/${i}/k`, 'a');
        for (const [i, r] of readers.entries())
          expect(valueOf(await r.next(5000))).toBe(`/m/${i}/k=a`);
        // Waiting for more: the watching client's main connection and its one blocking read
        // (however many watches), and the writer's connection.
        const second = readers.map((r) => r.next(10_000));
        const blocked = async () => (await clients()).filter((l) => / flags=\S*b/.test(l));
        await eventually(async () => (await blocked()).length === 1, { what: 'one blocked read' });
        expect((await clients()).length).toBe(base + 3);
        // Its connection killed: the watches go on (they read at each quiet spell meanwhile),
        // and it comes back.
        const id = /\bid=(\d+)/.exec((await blocked())[0]!)![1]!;
        await raw.call('CLIENT', 'KILL', 'ID', id);
        for (let i = 0; i < 20; i++) await writer.put(`/m/${i}/k`, 'b');
        for (const [i, m] of (await Promise.all(second)).entries())
          expect(valueOf(m)).toBe(`/m/${i}/k=b`);
        const third = readers.map((r) => r.next(10_000));
        await eventually(
          async () => {
            const now = await blocked();
            return now.length === 1 && !now[0]!.includes(`id=${id} `);
          },
          { what: 'the blocking read back on a new connection' },
        );
        expect((await clients()).length).toBe(base + 3);
        for (const r of readers) r.close();
        expect((await Promise.all(third)).every((m) => m === undefined)).toBe(true);
      } finally {
        for (const r of readers) r.close();
      }
    });

    it('bounds the history stream and reloads its script after SCRIPT FLUSH', async () => {
      const s = client('bounded', { historyRevisions: 64 });
      for (let i = 0; i < 500; i++) await s.put('/b/k', String(i));
      const len = await raw.xlen('{bounded}:log');
      expect(len).toBeGreaterThanOrEqual(64);
      expect(len).toBeLessThanOrEqual(64 + 4);
      await raw.script('FLUSH');
      expect((await s.put('/b/k', 'after flush')).version).toBe(501n);
    });
  },
);

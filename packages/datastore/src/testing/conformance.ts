import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ValidationError, keys } from '@calyx/model';
import {
  AlreadyExistsError,
  ClosedError,
  CompactedError,
  ConflictError,
  FutureRevisionError,
  InvalidArgumentError,
  InvalidKeyError,
  LeaseNotFoundError,
  NotFoundError,
  ValueTooLargeError,
} from '../errors.js';
import { ResourceClient } from '../resource-client.js';
import { Syncer, type SyncerMessage } from '../syncer.js';
import { MAX_KEY_BYTES, MAX_VALUE_BYTES } from '../validate.js';
import type {
  Compare,
  Datastore,
  KeyValue,
  TxnOp,
  TxnOpResult,
  WatchEvent,
  WatchMessage,
} from '../types.js';
import { GapInjectingDatastore } from './faulty-watch-store.js';
import { WatchReader, describeMessage, within } from './helpers.js';
import { ReferenceModel, type ModelOp, type ModelOutcome } from './reference-model.js';

/** What an adapter's test file hands to the suite. */
export interface ConformanceTarget {
  name: string;
  /** A fresh, empty store (or an empty namespace of a shared server). */
  open(): Promise<Datastore>;
  /** Another client on the same data as `store` (its own connection where the backend has them). */
  connect(store: Datastore): Promise<Datastore>;
  /** For stores on a manual clock: moves time forward. Without it, lease tests wait in real time. */
  advanceTime?(store: Datastore, ms: number): void | Promise<void>;
  /** TTL the lease tests use (backends may round small TTLs up). Default 1. */
  leaseTtlSeconds?: number;
  /** Runs per property test. Default 60. */
  propertyRuns?: number;
  /** Keys in the large-list test. Default 10,000. */
  largeListSize?: number;
  /** Ceiling for waits on events, in ms. Default 10,000. */
  timeoutMs?: number;
}

const enc = (v: unknown): string =>
  JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? `${x}n` : x));

async function expectError<E extends Error>(
  p: Promise<unknown>,
  type: new (...args: never[]) => E,
): Promise<E> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(type);
    return e as E;
  }
  throw new Error(`expected ${type.name}, but the operation succeeded`);
}

/**
 * Every contract test, against any adapter. Call it at the top level of a test file:
 * `runConformanceSuite({ name: 'memory', open, connect })`.
 */
export function runConformanceSuite(target: ConformanceTarget): void {
  const timeout = target.timeoutMs ?? 10_000;
  const ttl = target.leaseTtlSeconds ?? 1;

  describe(`Datastore conformance: ${target.name}`, () => {
    let store: Datastore;
    const extra: Datastore[] = [];

    beforeEach(async () => {
      store = await target.open();
    });
    afterEach(async () => {
      for (const s of extra.splice(0)) await s.close();
      await store.close();
    });

    async function peer(): Promise<Datastore> {
      const s = await target.connect(store);
      extra.push(s);
      return s;
    }

    /** Waits for lease expiry: by moving a manual clock, or in real time. */
    async function letLeaseExpire(
      ttlSeconds: number,
      until: () => Promise<boolean>,
    ): Promise<void> {
      if (target.advanceTime) {
        await target.advanceTime(store, ttlSeconds * 1000 + 1);
        return;
      }
      const deadline = Date.now() + ttlSeconds * 1000 + timeout;
      while (!(await until())) {
        if (Date.now() > deadline) throw new Error('lease did not expire in time');
        await new Promise((r) => setTimeout(r, 100));
      }
    }

    describe('keys and values', () => {
      const badKeys = [
        '',
        'no-slash',
        '/has space',
        '/tab\t',
        '/trailing/',
        '/double//slash',
        '/ünïcode',
        `/${'x'.repeat(MAX_KEY_BYTES)}`,
      ];

      it('rejects invalid keys on every operation with InvalidKeyError and writes nothing', async () => {
        const before = await store.revision();
        for (const key of badKeys) {
          await expectError(store.get(key), InvalidKeyError);
          await expectError(store.create(key, 'v'), InvalidKeyError);
          await expectError(store.update(key, 'v'), InvalidKeyError);
          await expectError(store.put(key, 'v'), InvalidKeyError);
          await expectError(store.delete(key), InvalidKeyError);
          await expectError(
            store.txn({ compares: [], success: [{ type: 'put', key, value: 'v' }] }),
            InvalidKeyError,
          );
          await expectError(
            store.txn({ compares: [{ key, target: 'exists', value: false }], success: [] }),
            InvalidKeyError,
          );
        }
        expect(await store.revision()).toBe(before);
      });

      it('rejects invalid prefixes in list and watch', async () => {
        for (const prefix of ['', 'x/', '/a b/', '/a//']) {
          await expectError(store.list(prefix), InvalidKeyError);
          await expectError(
            (async () => {
              for await (const _ of store.watch(prefix)) break;
            })(),
            InvalidKeyError,
          );
        }
      });

      it('accepts a key of exactly the maximum length', async () => {
        const key = `/${'k'.repeat(MAX_KEY_BYTES - 1)}`;
        await store.create(key, 'v');
        expect((await store.get(key))?.value).toBe('v');
        await expectError(store.create(`${key}k`, 'v'), InvalidKeyError);
      });

      it('round-trips a 1 MiB value byte for byte', async () => {
        const unit = 'aé€😀';
        const bytesPerUnit = Buffer.byteLength(unit);
        let value = unit.repeat(Math.floor(MAX_VALUE_BYTES / bytesPerUnit));
        value += 'x'.repeat(MAX_VALUE_BYTES - Buffer.byteLength(value));
        expect(Buffer.byteLength(value)).toBe(MAX_VALUE_BYTES);
        await store.create('/big/one', value);
        const kv = await store.get('/big/one');
        expect(kv?.value.length).toBe(value.length);
        expect(kv?.value === value).toBe(true);
        const listed = await store.list('/big/');
        expect(listed.items[0]?.value === value).toBe(true);
      });

      it('rejects a value over 1 MiB with ValueTooLargeError and writes nothing', async () => {
        const before = await store.revision();
        const e = await expectError(
          store.put('/big/two', 'x'.repeat(MAX_VALUE_BYTES + 1)),
          ValueTooLargeError,
        );
        expect(e.bytes).toBe(MAX_VALUE_BYTES + 1);
        await expectError(
          store.put('/big/three', '€'.repeat(MAX_VALUE_BYTES / 3 + 1)),
          ValueTooLargeError,
        );
        expect(await store.get('/big/two')).toBeUndefined();
        expect(await store.revision()).toBe(before);
      });

      it('keeps empty and non-ASCII values exactly', async () => {
        await store.put('/v/empty', '');
        await store.put('/v/text', 'ひらがな\n\u0000end');
        expect((await store.get('/v/empty'))?.value).toBe('');
        expect((await store.get('/v/text'))?.value).toBe('ひらがな\n\u0000end');
      });
    });

    describe('get and list', () => {
      it('returns undefined for a missing key', async () => {
        expect(await store.get('/missing')).toBeUndefined();
      });

      it('creates with createRevision = modRevision and version 1', async () => {
        const kv = await store.create('/a/1', 'one');
        expect(kv).toMatchObject({ key: '/a/1', value: 'one', version: 1n, lease: null });
        expect(kv.createRevision).toBe(kv.modRevision);
        expect(await store.get('/a/1')).toEqual(kv);
        expect(await store.revision()).toBe(kv.modRevision);
      });

      it('lists exactly the keys under a prefix, in byte order', async () => {
        for (const k of ['/a', '/a/', '/ab', '/a/b/c', '/a/a', '/a/B', '/a/b', '/b/x'].filter(
          (k) => !k.endsWith('/'),
        )) {
          await store.put(k, k);
        }
        const r = await store.list('/a/');
        expect(r.items.map((kv) => kv.key)).toEqual(['/a/B', '/a/a', '/a/b', '/a/b/c']);
        expect(r.revision).toBe(await store.revision());
      });

      it('lists nothing under an empty prefix, with the current revision', async () => {
        await store.put('/x/1', 'v');
        const r = await store.list('/nothing/here/');
        expect(r.items).toEqual([]);
        expect(r.revision).toBe(await store.revision());
      });

      it('reads the store as it was at an older revision', async () => {
        const v1 = await store.put('/h/k', 'v1');
        await store.put('/h/k', 'v2');
        await store.put('/h/other', 'o');
        await store.delete('/h/k');
        expect((await store.get('/h/k', { revision: v1.modRevision }))?.value).toBe('v1');
        const old = await store.list('/h/', { revision: v1.modRevision });
        expect(old.items.map((kv) => `${kv.key}=${kv.value}`)).toEqual(['/h/k=v1']);
        expect(old.revision).toBe(v1.modRevision);
        expect(await store.get('/h/k')).toBeUndefined();
      });

      it('rejects reads at a future revision', async () => {
        const rev = await store.revision();
        await expectError(store.get('/f/x', { revision: rev + 1000n }), FutureRevisionError);
        await expectError(store.list('/f/', { revision: rev + 1000n }), FutureRevisionError);
      });

      it('lists a large prefix completely, at one revision', async () => {
        const n = target.largeListSize ?? 10_000;
        const batch = 100;
        for (let i = 0; i < n; i += batch) {
          const ops: TxnOp[] = [];
          for (let j = i; j < Math.min(n, i + batch); j++)
            ops.push({ type: 'put', key: `/large/${String(j).padStart(6, '0')}`, value: `v${j}` });
          await store.txn({ compares: [], success: ops });
        }
        await store.put('/large0', 'outside');
        const r = await store.list('/large/');
        expect(r.items.length).toBe(n);
        expect(r.items[0]?.key).toBe('/large/000000');
        expect(r.items[n - 1]?.key).toBe(`/large/${String(n - 1).padStart(6, '0')}`);
        expect(r.items.every((kv, i) => kv.value === `v${i}`)).toBe(true);
        expect(r.items.every((kv) => kv.modRevision <= r.revision)).toBe(true);
      });
    });

    describe('create, update, put, delete', () => {
      it('create fails with AlreadyExistsError when the key exists, changing nothing', async () => {
        await store.create('/c/k', 'v1');
        const rev = await store.revision();
        const e = await expectError(store.create('/c/k', 'v2'), AlreadyExistsError);
        expect(e.key).toBe('/c/k');
        expect((await store.get('/c/k'))?.value).toBe('v1');
        expect(await store.revision()).toBe(rev);
      });

      it('update fails with NotFoundError for a missing key', async () => {
        const e = await expectError(store.update('/u/missing', 'v'), NotFoundError);
        expect(e.key).toBe('/u/missing');
        expect(await store.get('/u/missing')).toBeUndefined();
      });

      it('update with a stale expected modRevision fails with ConflictError naming both revisions', async () => {
        const first = await store.create('/u/k', 'v1');
        const second = await store.update('/u/k', 'v2');
        const e = await expectError(
          store.update('/u/k', 'v3', { expectedModRevision: first.modRevision }),
          ConflictError,
        );
        expect(e.expectedModRevision).toBe(first.modRevision);
        expect(e.actualModRevision).toBe(second.modRevision);
        expect((await store.get('/u/k'))?.value).toBe('v2');
      });

      it('update with the right revision bumps modRevision and version, keeps createRevision', async () => {
        const a = await store.create('/u/k', 'v1');
        const b = await store.update('/u/k', 'v2', { expectedModRevision: a.modRevision });
        expect(b.createRevision).toBe(a.createRevision);
        expect(b.modRevision).toBeGreaterThan(a.modRevision);
        expect(b.version).toBe(2n);
        expect(await store.get('/u/k')).toEqual(b);
      });

      it('put creates, then replaces', async () => {
        const a = await store.put('/p/k', 'v1');
        expect(a.version).toBe(1n);
        const b = await store.put('/p/k', 'v2');
        expect(b).toMatchObject({ value: 'v2', version: 2n, createRevision: a.createRevision });
      });

      it('delete returns the previous value; a second delete fails with NotFoundError', async () => {
        const a = await store.create('/d/k', 'v');
        const prev = await store.delete('/d/k');
        expect(prev).toEqual(a);
        expect(await store.get('/d/k')).toBeUndefined();
        await expectError(store.delete('/d/k'), NotFoundError);
      });

      it('delete with a stale expected revision fails with ConflictError and keeps the key', async () => {
        const a = await store.create('/d/k', 'v1');
        await store.update('/d/k', 'v2');
        await expectError(
          store.delete('/d/k', { expectedModRevision: a.modRevision }),
          ConflictError,
        );
        expect((await store.get('/d/k'))?.value).toBe('v2');
      });

      it('a key re-created after delete starts a new life', async () => {
        const a = await store.create('/d/k', 'v1');
        await store.update('/d/k', 'v2');
        await store.delete('/d/k');
        const b = await store.create('/d/k', 'v3');
        expect(b.version).toBe(1n);
        expect(b.createRevision).toBeGreaterThan(a.createRevision);
        expect(b.createRevision).toBe(b.modRevision);
      });

      it('each successful write advances the revision by exactly one; failures do not', async () => {
        const r0 = await store.revision();
        const a = await store.create('/r/a', '1');
        expect(a.modRevision).toBe(r0 + 1n);
        await expectError(store.create('/r/a', '2'), AlreadyExistsError);
        const b = await store.put('/r/b', '1');
        expect(b.modRevision).toBe(r0 + 2n);
        await expectError(store.update('/r/a', '2', { expectedModRevision: 1n }), ConflictError);
        await store.delete('/r/a');
        expect(await store.revision()).toBe(r0 + 3n);
      });
    });

    describe('transactions', () => {
      it('applies every success op at one revision when all compares hold', async () => {
        const a = await store.create('/t/a', '1');
        const r = await store.txn({
          compares: [
            { key: '/t/a', target: 'modRevision', op: '=', value: a.modRevision },
            { key: '/t/b', target: 'exists', value: false },
          ],
          success: [
            { type: 'put', key: '/t/a', value: '2' },
            { type: 'put', key: '/t/b', value: '1' },
            { type: 'get', key: '/t/a' },
          ],
          failure: [{ type: 'put', key: '/t/failed', value: 'x' }],
        });
        expect(r.succeeded).toBe(true);
        expect(r.revision).toBe(a.modRevision + 1n);
        expect(r.results[0]).toMatchObject({
          type: 'put',
          kv: { key: '/t/a', value: '2', version: 2n, modRevision: r.revision },
        });
        expect(r.results[1]).toMatchObject({
          type: 'put',
          kv: { key: '/t/b', value: '1', version: 1n, createRevision: r.revision },
        });
        expect(r.results[2]).toMatchObject({ type: 'get', kv: { key: '/t/a', value: '2' } });
        expect(await store.get('/t/failed')).toBeUndefined();
      });

      it('applies nothing of success and runs failure when one compare fails', async () => {
        await store.create('/t/a', '1');
        const r = await store.txn({
          compares: [
            { key: '/t/a', target: 'value', op: '=', value: '1' },
            { key: '/t/a', target: 'version', op: '>', value: 5n },
          ],
          success: [
            { type: 'put', key: '/t/a', value: 'changed' },
            { type: 'delete', key: '/t/a2' },
            { type: 'put', key: '/t/new', value: 'x' },
          ],
          failure: [{ type: 'get', key: '/t/a' }],
        });
        expect(r.succeeded).toBe(false);
        expect(r.results).toEqual([
          { type: 'get', kv: expect.objectContaining({ key: '/t/a', value: '1' }) },
        ]);
        expect((await store.get('/t/a'))?.value).toBe('1');
        expect(await store.get('/t/new')).toBeUndefined();
      });

      it('compares a missing key as revision 0, version 0, not existing', async () => {
        const r = await store.txn({
          compares: [
            { key: '/t/none', target: 'createRevision', op: '=', value: 0n },
            { key: '/t/none', target: 'modRevision', op: '=', value: 0n },
            { key: '/t/none', target: 'version', op: '=', value: 0n },
            { key: '/t/none', target: 'exists', value: false },
          ],
          success: [{ type: 'put', key: '/t/none', value: 'now' }],
        });
        expect(r.succeeded).toBe(true);
        const r2 = await store.txn({
          compares: [{ key: '/t/none', target: 'exists', value: false }],
          success: [{ type: 'put', key: '/t/none', value: 'again' }],
        });
        expect(r2.succeeded).toBe(false);
        expect((await store.get('/t/none'))?.value).toBe('now');
      });

      it('compares values for equality and inequality', async () => {
        await store.create('/t/v', 'blue');
        const yes = await store.txn({
          compares: [{ key: '/t/v', target: 'value', op: '!=', value: 'red' }],
          success: [{ type: 'put', key: '/t/v', value: 'red' }],
        });
        expect(yes.succeeded).toBe(true);
        const no = await store.txn({
          compares: [{ key: '/t/v', target: 'value', op: '=', value: 'blue' }],
          success: [{ type: 'put', key: '/t/v', value: 'green' }],
        });
        expect(no.succeeded).toBe(false);
        expect((await store.get('/t/v'))?.value).toBe('red');
      });

      it('rejects a transaction writing one key twice, before writing anything', async () => {
        const before = await store.revision();
        await expectError(
          store.txn({
            compares: [],
            success: [
              { type: 'put', key: '/t/x', value: '1' },
              { type: 'delete', key: '/t/x' },
            ],
          }),
          InvalidArgumentError,
        );
        await expectError(
          store.txn({
            compares: [],
            success: [
              { type: 'put', key: '/t/ok', value: '1' },
              { type: 'put', key: '/t/bad key', value: '1' },
            ],
          }),
          InvalidKeyError,
        );
        await expectError(
          store.txn({
            compares: [],
            success: [
              { type: 'put', key: '/t/ok', value: '1' },
              { type: 'put', key: '/t/huge', value: 'x'.repeat(MAX_VALUE_BYTES + 1) },
            ],
          }),
          ValueTooLargeError,
        );
        expect(await store.get('/t/ok')).toBeUndefined();
        expect(await store.revision()).toBe(before);
      });

      it('does not advance the revision when it writes nothing', async () => {
        await store.put('/t/a', '1');
        const before = await store.revision();
        const r = await store.txn({
          compares: [],
          success: [
            { type: 'get', key: '/t/a' },
            { type: 'delete', key: '/t/missing' },
          ],
        });
        expect(r.succeeded).toBe(true);
        expect(r.revision).toBe(before);
        expect(r.results[1]).toEqual({ type: 'delete', deleted: false, prev: undefined });
        expect(await store.revision()).toBe(before);
      });

      it('commits 100 keys atomically: watchers see them all at one revision', async () => {
        const from = (await store.revision()) + 1n;
        const w = new WatchReader(store, '/atomic/', { fromRevision: from });
        try {
          const ops: TxnOp[] = Array.from({ length: 100 }, (_, i) => ({
            type: 'put',
            key: `/atomic/${String(i).padStart(3, '0')}`,
            value: `${i}`,
          }));
          const r = await store.txn({ compares: [], success: ops });
          const events = await w.take(100, timeout);
          expect(new Set(events.map((e) => (e.type === 'put' ? e.kv.modRevision : -1n)))).toEqual(
            new Set([r.revision]),
          );
          expect(events.map((e) => (e.type === 'put' ? e.kv.key : ''))).toEqual(
            ops.map((o) => o.key),
          );
        } finally {
          w.close();
        }
      });

      it('loses no update when concurrent clients race compare-and-set on one key', async () => {
        const clients = [store, await peer(), await peer(), await peer()];
        await store.create('/cas/counter', '0');
        const perWriter = 25;
        let conflicts = 0;
        await Promise.all(
          clients.flatMap((c) =>
            [0, 1].map(async () => {
              for (let done = 0; done < perWriter;) {
                const kv = await c.get('/cas/counter');
                try {
                  await c.update('/cas/counter', String(Number(kv!.value) + 1), {
                    expectedModRevision: kv!.modRevision,
                  });
                  done++;
                } catch (e) {
                  if (!(e instanceof ConflictError)) throw e;
                  conflicts++;
                }
              }
            }),
          ),
        );
        const final = await store.get('/cas/counter');
        expect(final?.value).toBe(String(clients.length * 2 * perWriter));
        expect(final?.version).toBe(BigInt(clients.length * 2 * perWriter + 1));
        expect(conflicts).toBeGreaterThan(0);
      });

      it('lets exactly one of many concurrent creates of a key win', async () => {
        const clients = [store, await peer(), await peer()];
        const results = await Promise.allSettled(
          clients.flatMap((c, i) => [0, 1, 2].map((j) => c.create('/race/k', `${i}.${j}`))),
        );
        const won = results.filter((r) => r.status === 'fulfilled');
        expect(won.length).toBe(1);
        for (const r of results)
          if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(AlreadyExistsError);
        expect((await store.get('/race/k'))?.value).toBe(
          (won[0] as PromiseFulfilledResult<KeyValue>).value.value,
        );
      });
    });

    describe('watch', () => {
      it('delivers puts and deletes under the prefix in revision order, with previous values', async () => {
        const from = (await store.revision()) + 1n;
        const w = new WatchReader(store, '/w/', { fromRevision: from });
        try {
          const a = await store.put('/w/a', '1');
          await store.put('/outside', 'x');
          await store.put('/w/a', '2');
          await store.delete('/w/a');
          const msgs = await w.take(3, timeout);
          expect(msgs.map(describeMessage)).toEqual(['put /w/a=1', 'put /w/a=2', 'del /w/a']);
          const [m1, m2, m3] = msgs as [WatchEvent, WatchEvent, WatchEvent];
          expect(m1.type === 'put' && m1.prev).toBeUndefined();
          expect(m2.type === 'put' && m2.prev?.value).toBe('1');
          expect(m3.type === 'delete' && m3.prev?.value).toBe('2');
          expect(m1.type === 'put' && m1.kv).toEqual(a);
          const revs = msgs.map((m) =>
            m.type === 'put' ? m.kv.modRevision : m.type === 'delete' ? m.revision : 0n,
          );
          expect([...revs].sort((x, y) => (x < y ? -1 : 1))).toEqual(revs);
        } finally {
          w.close();
        }
      });

      it('ignores keys outside the prefix (including lookalike siblings)', async () => {
        const w = new WatchReader(store, '/w/a/', { fromRevision: (await store.revision()) + 1n });
        try {
          await store.put('/w/ab', 'no');
          await store.put('/w/a', 'no');
          await store.put('/w/a/x', 'yes');
          expect((await w.take(1, timeout)).map(describeMessage)).toEqual(['put /w/a/x=yes']);
          await store.put('/w/a/y', 'marker');
          expect(describeMessage(await w.next(timeout))).toBe('put /w/a/y=marker');
        } finally {
          w.close();
        }
      });

      it('replays history from a past revision, then follows live', async () => {
        const a = await store.put('/w/k', '1');
        await store.put('/w/k', '2');
        const w = new WatchReader(store, '/w/', { fromRevision: a.modRevision });
        try {
          expect((await w.take(2, timeout)).map(describeMessage)).toEqual([
            'put /w/k=1',
            'put /w/k=2',
          ]);
          await store.put('/w/k', '3');
          expect(describeMessage(await w.next(timeout))).toBe('put /w/k=3');
        } finally {
          w.close();
        }
      });

      it('resumes from any revision with exactly the later events', async () => {
        const start = (await store.revision()) + 1n;
        const log: string[] = [];
        for (let i = 0; i < 12; i++) {
          const key = `/res/${i % 4}`;
          if (i % 5 === 4) {
            await store.delete(`/res/${(i - 1) % 4}`);
            log.push(`del /res/${(i - 1) % 4}`);
          } else {
            await store.put(key, `${i}`);
            log.push(`put ${key}=${i}`);
          }
        }
        const end = await store.revision();
        for (let from = start; from <= end; from++) {
          const w = new WatchReader(store, '/res/', { fromRevision: from });
          try {
            const expected = log.slice(Number(from - start));
            expect((await w.take(expected.length, timeout)).map(describeMessage)).toEqual(expected);
            await store.put('/res/marker', String(from));
            expect(describeMessage(await w.next(timeout))).toBe(`put /res/marker=${from}`);
          } finally {
            w.close();
          }
          log.push(`put /res/marker=${from}`);
        }
      });

      it('delivers the events of one transaction at one revision, in op order', async () => {
        const w = new WatchReader(store, '/wt/', { fromRevision: (await store.revision()) + 1n });
        try {
          await store.put('/wt/b', 'old');
          const r = await store.txn({
            compares: [],
            success: [
              { type: 'put', key: '/wt/c', value: '1' },
              { type: 'delete', key: '/wt/b' },
              { type: 'put', key: '/wt/a', value: '1' },
            ],
          });
          const msgs = await w.take(4, timeout);
          expect(msgs.map(describeMessage)).toEqual([
            'put /wt/b=old',
            'put /wt/c=1',
            'del /wt/b',
            'put /wt/a=1',
          ]);
          const revs = msgs
            .slice(1)
            .map((m) =>
              m.type === 'put' ? m.kv.modRevision : m.type === 'delete' ? m.revision : 0n,
            );
          expect(revs).toEqual([r.revision, r.revision, r.revision]);
        } finally {
          w.close();
        }
      });

      it('ends quietly when its AbortSignal aborts', async () => {
        const ac = new AbortController();
        const w = new WatchReader(
          store,
          '/wa/',
          { fromRevision: (await store.revision()) + 1n },
          ac.signal,
        );
        await store.put('/wa/1', 'x');
        expect(describeMessage(await w.next(timeout))).toBe('put /wa/1=x');
        ac.abort();
        await w.expectEnd(timeout);
      });

      it('stops when the consumer breaks out, leaving the store working', async () => {
        const from = (await store.revision()) + 1n;
        await store.put('/wb/1', 'x');
        for await (const m of store.watch('/wb/', { fromRevision: from })) {
          expect(describeMessage(m)).toBe('put /wb/1=x');
          break;
        }
        await store.put('/wb/2', 'y');
        expect((await store.get('/wb/2'))?.value).toBe('y');
      });

      it('serves independent watchers on overlapping prefixes', async () => {
        const from = (await store.revision()) + 1n;
        const outer = new WatchReader(store, '/o/', { fromRevision: from });
        const inner = new WatchReader(store, '/o/i/', { fromRevision: from });
        try {
          await store.put('/o/x', '1');
          await store.put('/o/i/y', '2');
          expect((await outer.take(2, timeout)).map(describeMessage)).toEqual([
            'put /o/x=1',
            'put /o/i/y=2',
          ]);
          expect((await inner.take(1, timeout)).map(describeMessage)).toEqual(['put /o/i/y=2']);
        } finally {
          outer.close();
          inner.close();
        }
      });

      it('waits for a future revision when watching from one', async () => {
        const now = await store.revision();
        const w = new WatchReader(store, '/wf/', { fromRevision: now + 2n });
        try {
          await store.put('/wf/skipped', '1');
          await store.put('/wf/seen', '2');
          expect(describeMessage(await w.next(timeout))).toBe('put /wf/seen=2');
        } finally {
          w.close();
        }
      });
    });

    describe('compaction', () => {
      it('ends a watch from before the compacted revision with a resync signal', async () => {
        const a = await store.put('/cp/k', '1');
        await store.put('/cp/k', '2');
        const c = await store.put('/cp/k', '3');
        await store.compact(c.modRevision);
        const w = new WatchReader(store, '/cp/', { fromRevision: a.modRevision });
        const m = await w.next(timeout);
        expect(m?.type).toBe('resync');
        expect(m?.type === 'resync' && m.compactRevision).toBeGreaterThanOrEqual(c.modRevision);
        await w.expectEnd(timeout);
      });

      it('fails reads before the compacted revision and serves reads at or after it', async () => {
        const a = await store.put('/cp/k', '1');
        const b = await store.put('/cp/k', '2');
        await store.put('/cp/other', 'x');
        await store.compact(b.modRevision);
        const e = await expectError(
          store.get('/cp/k', { revision: a.modRevision }),
          CompactedError,
        );
        expect(e.requestedRevision).toBe(a.modRevision);
        await expectError(store.list('/cp/', { revision: a.modRevision }), CompactedError);
        expect((await store.get('/cp/k', { revision: b.modRevision }))?.value).toBe('2');
        expect((await store.list('/cp/')).items.map((kv) => kv.value)).toEqual(['2', 'x']);
      });

      it('watches from exactly the compacted revision without a resync', async () => {
        await store.put('/cp/k', '1');
        const b = await store.put('/cp/k', '2');
        await store.compact(b.modRevision);
        const w = new WatchReader(store, '/cp/', { fromRevision: b.modRevision });
        try {
          expect(describeMessage(await w.next(timeout))).toBe('put /cp/k=2');
        } finally {
          w.close();
        }
      });

      it('leaves a watcher that is keeping up undisturbed', async () => {
        const w = new WatchReader(store, '/cl/', { fromRevision: (await store.revision()) + 1n });
        try {
          await store.put('/cl/1', 'a');
          expect(describeMessage(await w.next(timeout))).toBe('put /cl/1=a');
          await store.compact(await store.revision());
          await store.put('/cl/2', 'b');
          expect(describeMessage(await w.next(timeout))).toBe('put /cl/2=b');
        } finally {
          w.close();
        }
      });
    });

    describe('leases', () => {
      it('grants at least the requested TTL', async () => {
        const lease = await store.grantLease(ttl);
        expect(lease.ttlSeconds).toBeGreaterThanOrEqual(ttl);
        await store.revokeLease(lease.id);
      });

      it('deletes the keys of an expired lease, with delete events', async () => {
        const lease = await store.grantLease(ttl);
        const w = new WatchReader(store, '/l/', { fromRevision: (await store.revision()) + 1n });
        try {
          const kv = await store.put('/l/a', 'x', { lease: lease.id });
          await store.put('/l/b', 'y', { lease: lease.id });
          await store.put('/l/keep', 'z');
          expect(kv.lease).toBe(lease.id);
          expect((await w.take(3, timeout)).map(describeMessage)).toEqual([
            'put /l/a=x',
            'put /l/b=y',
            'put /l/keep=z',
          ]);
          await letLeaseExpire(
            lease.ttlSeconds,
            async () => (await store.get('/l/a')) === undefined,
          );
          const dels = await w.take(2, timeout + lease.ttlSeconds * 1000);
          expect(dels.map(describeMessage).sort()).toEqual(['del /l/a', 'del /l/b']);
          expect((await store.list('/l/')).items.map((k) => k.key)).toEqual(['/l/keep']);
          await expectError(store.keepAliveLease(lease.id), LeaseNotFoundError);
        } finally {
          w.close();
        }
      });

      it('keeps the keys of a lease that is kept alive', async () => {
        const lease = await store.grantLease(ttl);
        await store.put('/l/alive', 'x', { lease: lease.id });
        const steps = 4;
        for (let i = 0; i < steps; i++) {
          if (target.advanceTime) await target.advanceTime(store, (lease.ttlSeconds * 1000) / 2);
          else await new Promise((r) => setTimeout(r, (lease.ttlSeconds * 1000) / 2));
          const remaining = await store.keepAliveLease(lease.id);
          expect(remaining).toBeGreaterThan(0);
        }
        expect((await store.get('/l/alive'))?.value).toBe('x');
        await store.revokeLease(lease.id);
      });

      it('revoke deletes the attached keys at once, at one revision', async () => {
        const lease = await store.grantLease(60);
        await store.put('/l/r1', 'x', { lease: lease.id });
        await store.put('/l/r2', 'y', { lease: lease.id });
        const w = new WatchReader(store, '/l/', { fromRevision: (await store.revision()) + 1n });
        try {
          await store.revokeLease(lease.id);
          const msgs = await w.take(2, timeout);
          expect(msgs.map(describeMessage).sort()).toEqual(['del /l/r1', 'del /l/r2']);
          const revs = new Set(msgs.map((m) => (m.type === 'delete' ? m.revision : 0n)));
          expect(revs.size).toBe(1);
          expect((await store.list('/l/')).items).toEqual([]);
        } finally {
          w.close();
        }
      });

      it('rejects unknown leases with LeaseNotFoundError and writes nothing', async () => {
        const lease = await store.grantLease(60);
        await store.revokeLease(lease.id);
        await expectError(store.keepAliveLease(lease.id), LeaseNotFoundError);
        await expectError(store.revokeLease(lease.id), LeaseNotFoundError);
        await expectError(store.put('/l/ghost', 'x', { lease: lease.id }), LeaseNotFoundError);
        await expectError(
          store.txn({
            compares: [],
            success: [{ type: 'put', key: '/l/ghost2', value: 'x', lease: lease.id }],
          }),
          LeaseNotFoundError,
        );
        expect(await store.get('/l/ghost')).toBeUndefined();
        expect(await store.get('/l/ghost2')).toBeUndefined();
      });

      it('moves a key off its lease when it is rewritten without one', async () => {
        const lease = await store.grantLease(60);
        await store.put('/l/m', 'x', { lease: lease.id });
        const kv = await store.put('/l/m', 'y');
        expect(kv.lease).toBeNull();
        await store.revokeLease(lease.id);
        expect((await store.get('/l/m'))?.value).toBe('y');
      });
    });

    describe('close', () => {
      it('rejects operations after close with ClosedError', async () => {
        const other = await target.connect(store);
        await other.close();
        await expectError(other.get('/x'), ClosedError);
        await expectError(other.put('/x', 'v'), ClosedError);
        await expectError(other.list('/'), ClosedError);
        await expectError(other.txn({ compares: [], success: [] }), ClosedError);
        await expectError(other.grantLease(10), ClosedError);
      });

      it('ends active watches on close', async () => {
        const other = await target.connect(store);
        const w = new WatchReader(other, '/cw/', { fromRevision: (await other.revision()) + 1n });
        await store.put('/cw/1', 'x');
        expect(describeMessage(await w.next(timeout))).toBe('put /cw/1=x');
        await other.close();
        await w.expectEnd(timeout);
      });

      it('is idempotent and leaves other clients working', async () => {
        const other = await target.connect(store);
        await other.close();
        await other.close();
        await store.put('/still/works', 'yes');
        expect((await store.get('/still/works'))?.value).toBe('yes');
      });
    });

    describe('resource client', () => {
      it('validates on write: an invalid resource writes nothing and names the field', async () => {
        const client = new ResourceClient(store);
        const before = await store.revision();
        const e = await expectError(
          client.create('Subnet', {
            id: 's1',
            networkId: 'n1',
            cidr: '10.0.0.0/24',
            gatewayIp: '10.0.1.1',
          }),
          ValidationError,
        );
        expect(e.message).toBe('Subnet s1: gatewayIp 10.0.1.1 is outside 10.0.0.0/24');
        expect(await store.revision()).toBe(before);
        const ok = await client.create('Subnet', {
          id: 's1',
          networkId: 'n1',
          cidr: '10.0.0.0/24',
        });
        expect(ok.key).toBe(keys.subnet('s1'));
        const got = await client.get('Subnet', keys.subnet('s1'));
        expect(got?.value).toEqual(ok.value);
        expect(got?.value.allocationPools).toEqual([{ start: '10.0.0.2', end: '10.0.0.254' }]);
      });

      it('validates on read: a corrupt stored value is a ValidationError naming the key', async () => {
        const client = new ResourceClient(store);
        await store.put(keys.network('bad'), JSON.stringify({ id: 'bad', mtu: 'huge' }));
        await store.put(keys.network('notjson'), '{');
        await expectError(client.get('Network', keys.network('bad')), ValidationError);
        const e = await expectError(
          client.get('Network', keys.network('notjson')),
          ValidationError,
        );
        expect(e.message).toContain(keys.network('notjson'));
      });

      it('commits a multi-key change all-or-nothing and names the key that blocked it', async () => {
        const client = new ResourceClient(store);
        await client.create('Network', { id: 'n1' });
        const before = await store.revision();
        const e = await expectError(
          client
            .txn()
            .create('Subnet', { id: 's9', networkId: 'n1', cidr: '10.9.0.0/24' })
            .create('Network', { id: 'n1' })
            .commit(),
          AlreadyExistsError,
        );
        expect(e.key).toBe(keys.network('n1'));
        expect(await store.get(keys.subnet('s9'))).toBeUndefined();
        expect(await store.revision()).toBe(before);
        // Validation of a later write fails before anything is sent.
        expect(() =>
          client.txn().create('Network', { id: 'n2' }).create('Network', { id: 'bad id' }),
        ).toThrow(ValidationError);
        const rev = await client
          .txn()
          .create('Network', { id: 'n2' })
          .create('Subnet', { id: 's2', networkId: 'n2', cidr: '10.2.0.0/24' })
          .commit();
        expect((await store.get(keys.network('n2')))?.modRevision).toBe(rev);
        expect((await store.get(keys.subnet('s2')))?.modRevision).toBe(rev);
      });
    });

    describe('syncer', () => {
      async function nextMessage(it: AsyncIterator<SyncerMessage>): Promise<SyncerMessage> {
        const r = await within(timeout, 'a syncer message', it.next());
        if (r.done) throw new Error('syncer ended');
        return r.value;
      }
      async function until<T extends SyncerMessage['type']>(
        it: AsyncIterator<SyncerMessage>,
        type: T,
        seen: SyncerMessage[] = [],
      ): Promise<SyncerMessage[]> {
        for (;;) {
          const m = await nextMessage(it);
          seen.push(m);
          if (m.type === type) return seen;
        }
      }
      const changesOf = (msgs: SyncerMessage[]) =>
        msgs.flatMap((m) =>
          m.type === 'changes'
            ? m.changes.map((c) =>
                c.type === 'put' ? `put ${c.key}=${c.kv.value}` : `del ${c.key}`,
              )
            : [],
        );

      it('lists, signals in-sync, then follows live changes', async () => {
        await store.put('/s/a', '1');
        await store.put('/s/b', '1');
        const syncer = new Syncer(store, { prefixes: ['/s/'] });
        const it = syncer[Symbol.asyncIterator]();
        try {
          const first = await until(it, 'in-sync');
          expect(changesOf(first)).toEqual(['put /s/a=1', 'put /s/b=1']);
          expect(syncer.inSync).toBe(true);
          await store.put('/s/a', '2');
          await store.delete('/s/b');
          const seen: SyncerMessage[] = [];
          while (changesOf(seen).length < 2) seen.push(await nextMessage(it));
          expect(changesOf(seen)).toEqual(['put /s/a=2', 'del /s/b']);
          expect([...syncer.state.keys()]).toEqual(['/s/a']);
        } finally {
          await syncer.close();
        }
      });

      it('after a gap with compaction, re-lists and emits exactly the differences', async () => {
        const gappy = new GapInjectingDatastore(store);
        await store.put('/s/same', '1');
        await store.put('/s/changed', '1');
        await store.put('/s/deleted', '1');
        await store.put('/s/recreated', '1');
        const syncer = new Syncer(gappy, { prefixes: ['/s/'], retryBaseMs: 1, retryMaxMs: 5 });
        const it = syncer[Symbol.asyncIterator]();
        try {
          await until(it, 'in-sync');
          gappy.freeze();
          expect((await nextMessage(it)).type).toBe('resyncing');
          await store.put('/s/changed', '2');
          await store.delete('/s/deleted');
          await store.delete('/s/recreated');
          await store.put('/s/recreated', '1');
          await store.put('/s/new', '1');
          await store.put('/s/changed', '3');
          await store.compact(await store.revision());
          gappy.thaw();
          const after = await until(it, 'in-sync');
          expect(changesOf(after).sort()).toEqual([
            'del /s/deleted',
            'put /s/changed=3',
            'put /s/new=1',
            'put /s/recreated=1',
          ]);
          const last = after.at(-1);
          expect(last?.type === 'in-sync' && last.resyncs).toBe(1);
          // Live again, without duplicates of what the re-list delivered.
          await store.put('/s/after', 'x');
          const live = await nextMessage(it);
          expect(changesOf([live])).toEqual(['put /s/after=x']);
          expect(Object.fromEntries([...syncer.state].map(([k, v]) => [k, v.value]))).toEqual({
            '/s/after': 'x',
            '/s/changed': '3',
            '/s/new': '1',
            '/s/recreated': '1',
            '/s/same': '1',
          });
        } finally {
          await syncer.close();
        }
      });

      it('syncs several prefixes at one revision', async () => {
        await store.put('/m1/a', '1');
        await store.put('/m2/b', '1');
        await store.put('/m3/ignored', '1');
        const syncer = new Syncer(store, { prefixes: ['/m1/', '/m2/'] });
        const it = syncer[Symbol.asyncIterator]();
        try {
          const first = await until(it, 'in-sync');
          expect(changesOf(first)).toEqual(['put /m1/a=1', 'put /m2/b=1']);
          await store.put('/m2/c', '1');
          await store.put('/m3/x', '1');
          await store.put('/m1/d', '1');
          const seen: SyncerMessage[] = [];
          while (changesOf(seen).length < 2) seen.push(await nextMessage(it));
          expect(changesOf(seen).sort()).toEqual(['put /m1/d=1', 'put /m2/c=1']);
        } finally {
          await syncer.close();
        }
      });
    });

    describe('properties against a reference model', () => {
      const KEYS = ['/pr/a', '/pr/b', '/pr/c', '/pr/d/x'];
      const key = fc.constantFrom(...KEYS);
      const value = fc.constantFrom('', 'v1', 'v2', 'long-value-3');
      const expected = fc.constantFrom(undefined, 'current' as const, 'stale' as const);
      type CompareSpec =
        | { key: string; kind: 'exists'; value: boolean }
        | { key: string; kind: 'value'; op: '=' | '!='; value: string }
        | { key: string; kind: 'version'; op: '=' | '!=' | '<' | '>'; value: bigint }
        | { key: string; kind: 'modCurrent'; op: '=' | '!=' };
      const compare: fc.Arbitrary<CompareSpec> = fc.oneof(
        fc.record({ key, kind: fc.constant('exists' as const), value: fc.boolean() }),
        fc.record({
          key,
          kind: fc.constant('value' as const),
          op: fc.constantFrom('=' as const, '!=' as const),
          value,
        }),
        fc.record({
          key,
          kind: fc.constant('version' as const),
          op: fc.constantFrom('=' as const, '!=' as const, '<' as const, '>' as const),
          value: fc.bigInt({ min: 0n, max: 3n }),
        }),
        fc.record({
          key,
          kind: fc.constant('modCurrent' as const),
          op: fc.constantFrom('=' as const, '!=' as const),
        }),
      );
      const txnOps = fc
        .uniqueArray(
          fc.record({
            key,
            type: fc.constantFrom('put' as const, 'delete' as const, 'get' as const),
            value,
          }),
          { selector: (o) => o.key, maxLength: 3 },
        )
        .map((ops) =>
          ops.map((o): TxnOp =>
            o.type === 'put'
              ? { type: 'put', key: o.key, value: o.value }
              : { type: o.type, key: o.key },
          ),
        );
      type OpSpec =
        | { op: 'create' | 'put'; key: string; value: string }
        | { op: 'update'; key: string; value: string; expected: 'current' | 'stale' | undefined }
        | { op: 'delete'; key: string; expected: 'current' | 'stale' | undefined }
        | { op: 'txn'; compares: CompareSpec[]; success: TxnOp[]; failure: TxnOp[] };
      const opArb: fc.Arbitrary<OpSpec> = fc.oneof(
        fc.record({ op: fc.constant('create' as const), key, value }),
        fc.record({ op: fc.constant('put' as const), key, value }),
        fc.record({ op: fc.constant('update' as const), key, value, expected }),
        fc.record({ op: fc.constant('delete' as const), key, expected }),
        fc.record({
          op: fc.constant('txn' as const),
          compares: fc.array(compare, { maxLength: 2 }),
          success: txnOps,
          failure: txnOps,
        }),
      );

      /** Replaces revisions by their rank among the revisions that occurred, so stores with different offsets compare. */
      function normaliser(revisions: bigint[]) {
        const rank = new Map(
          [...new Set(revisions)].sort((a, b) => (a < b ? -1 : 1)).map((r, i) => [r, i]),
        );
        const r = (x: bigint): string => `r${rank.get(x) ?? `?${x}`}`;
        const kv = (k: KeyValue | undefined) =>
          k
            ? {
                key: k.key,
                value: k.value,
                create: r(k.createRevision),
                mod: r(k.modRevision),
                version: k.version,
              }
            : undefined;
        return {
          kv,
          event: (e: WatchMessage) =>
            e.type === 'put'
              ? { t: 'put', kv: kv(e.kv), prev: kv(e.prev) }
              : e.type === 'delete'
                ? { t: 'del', key: e.key, rev: r(e.revision), prev: kv(e.prev) }
                : { t: 'resync' },
          result: (x: TxnOpResult) =>
            x.type === 'put'
              ? { t: 'put', kv: kv(x.kv) }
              : x.type === 'get'
                ? { t: 'get', kv: kv(x.kv) }
                : { t: 'del', deleted: x.deleted, prev: kv(x.prev) },
        };
      }

      function errorCode(e: unknown): 'ALREADY_EXISTS' | 'NOT_FOUND' | 'CONFLICT' {
        if (e instanceof AlreadyExistsError) return 'ALREADY_EXISTS';
        if (e instanceof NotFoundError) return 'NOT_FOUND';
        if (e instanceof ConflictError) return 'CONFLICT';
        throw e;
      }

      it('random operation sequences give the model’s outcomes, state and event stream', async () => {
        await fc.assert(
          fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 30 }), async (ops) => {
            const s = await target.open();
            try {
              const start = await s.revision();
              const model = new ReferenceModel(start);
              const adapterRevs: bigint[] = [start];
              const outcomes: { adapter: unknown; model: unknown }[] = [];
              for (const spec of ops) {
                let mop: ModelOp;
                let run: () => Promise<{ succeeded?: boolean; results?: TxnOpResult[] } | void>;
                if (spec.op === 'create' || spec.op === 'put') {
                  mop = spec;
                  run = () =>
                    (spec.op === 'create'
                      ? s.create(spec.key, spec.value)
                      : s.put(spec.key, spec.value)
                    ).then(() => undefined);
                } else if (spec.op === 'update' || spec.op === 'delete') {
                  const actual = (await s.get(spec.key))?.modRevision ?? 0n;
                  const exp =
                    spec.expected === undefined
                      ? undefined
                      : spec.expected === 'current'
                        ? actual
                        : actual + 1000n;
                  mop =
                    spec.op === 'update'
                      ? {
                          op: 'update',
                          key: spec.key,
                          value: spec.value,
                          ...(spec.expected ? { expected: spec.expected } : {}),
                        }
                      : {
                          op: 'delete',
                          key: spec.key,
                          ...(spec.expected ? { expected: spec.expected } : {}),
                        };
                  run = () =>
                    (spec.op === 'update'
                      ? s.update(
                          spec.key,
                          spec.value,
                          exp === undefined ? {} : { expectedModRevision: exp },
                        )
                      : s.delete(spec.key, exp === undefined ? {} : { expectedModRevision: exp })
                    ).then(() => undefined);
                } else {
                  const t = spec as Extract<OpSpec, { op: 'txn' }>;
                  const adapterCompares: Compare[] = [];
                  const modelCompares: Compare[] = [];
                  for (const c of t.compares) {
                    if (c.kind === 'exists') {
                      adapterCompares.push({ key: c.key, target: 'exists', value: c.value });
                      modelCompares.push({ key: c.key, target: 'exists', value: c.value });
                    } else if (c.kind === 'value') {
                      adapterCompares.push({
                        key: c.key,
                        target: 'value',
                        op: c.op,
                        value: c.value,
                      });
                      modelCompares.push({ key: c.key, target: 'value', op: c.op, value: c.value });
                    } else if (c.kind === 'version') {
                      adapterCompares.push({
                        key: c.key,
                        target: 'version',
                        op: c.op,
                        value: c.value,
                      });
                      modelCompares.push({
                        key: c.key,
                        target: 'version',
                        op: c.op,
                        value: c.value,
                      });
                    } else {
                      const actual = (await s.get(c.key))?.modRevision ?? 0n;
                      adapterCompares.push({
                        key: c.key,
                        target: 'modRevision',
                        op: c.op,
                        value: actual,
                      });
                      modelCompares.push({
                        key: c.key,
                        target: 'modRevision',
                        op: c.op,
                        value: model.state.get(c.key)?.modRevision ?? 0n,
                      });
                    }
                  }
                  mop = {
                    op: 'txn',
                    compares: modelCompares,
                    success: t.success,
                    failure: t.failure,
                  };
                  run = () =>
                    s
                      .txn({ compares: adapterCompares, success: t.success, failure: t.failure })
                      .then((r) => ({ succeeded: r.succeeded, results: r.results }));
                }
                const m: ModelOutcome = model.apply(mop);
                let a: unknown;
                try {
                  const r = await run();
                  a = { ok: true, ...(r ?? {}) };
                } catch (e) {
                  a = { ok: false, error: errorCode(e) };
                }
                adapterRevs.push(await s.revision());
                outcomes.push({ adapter: a, model: m });
              }
              // Watch everything from the start and compare with the model's event log.
              const end = await s.revision();
              const events: WatchMessage[] = [];
              if (model.events.length > 0) {
                const w = new WatchReader(s, '/pr/', { fromRevision: start + 1n });
                try {
                  events.push(...(await w.take(model.events.length, timeout)));
                  await s.put('/pr/zz-marker', 'end');
                  expect(describeMessage(await w.next(timeout))).toBe('put /pr/zz-marker=end');
                } finally {
                  w.close();
                }
              }
              const modelRevs = [
                ...new Set([
                  start,
                  ...model.events.map((e) => (e.type === 'put' ? e.kv.modRevision : e.revision)),
                ]),
              ];
              const na = normaliser([...adapterRevs, end]);
              const nm = normaliser([...modelRevs, model.revision]);
              const norm = (o: unknown, n: ReturnType<typeof normaliser>) => {
                const x = o as { ok: boolean; results?: TxnOpResult[] };
                return x.results ? { ...x, results: x.results.map(n.result) } : x;
              };
              expect(enc(outcomes.map((o) => norm(o.adapter, na)))).toBe(
                enc(outcomes.map((o) => norm(o.model, nm))),
              );
              const finalList = (await s.list('/pr/', { revision: end })).items;
              expect(enc(finalList.map(na.kv))).toBe(enc(model.list('/pr/').map(nm.kv)));
              expect(enc(events.map(na.event))).toBe(enc(model.events.map(nm.event)));
              expect(end - start).toBe(model.revision - start);
            } finally {
              await s.close();
            }
          }),
          { numRuns: target.propertyRuns ?? 60 },
        );
      });

      it('watches started at random revisions see exactly the suffix of the event stream', async () => {
        await fc.assert(
          fc.asyncProperty(
            fc.array(fc.record({ key, value, del: fc.boolean() }), { minLength: 1, maxLength: 20 }),
            fc.nat({ max: 25 }),
            async (writes, fromOffset) => {
              const s = await target.open();
              try {
                const start = await s.revision();
                const log: { rev: bigint; text: string }[] = [];
                for (const w of writes) {
                  if (w.del) {
                    try {
                      const prev = await s.delete(w.key);
                      log.push({ rev: await s.revision(), text: `del ${prev.key}` });
                    } catch (e) {
                      if (!(e instanceof NotFoundError)) throw e;
                    }
                  } else {
                    const kv = await s.put(w.key, w.value);
                    log.push({ rev: kv.modRevision, text: `put ${w.key}=${w.value}` });
                  }
                }
                const end = await s.revision();
                const wanted = start + 1n + BigInt(fromOffset);
                // At most one past the end, so the marker written next is always seen.
                const from = wanted > end + 1n ? end + 1n : wanted;
                const expected = log.filter((l) => l.rev >= from).map((l) => l.text);
                const w = new WatchReader(s, '/pr/', { fromRevision: from });
                try {
                  const got = await w.take(expected.length, timeout);
                  await s.put('/pr/zz-marker', 'end');
                  got.push((await w.next(timeout))!);
                  expect(got.map(describeMessage)).toEqual([...expected, 'put /pr/zz-marker=end']);
                } finally {
                  w.close();
                }
              } finally {
                await s.close();
              }
            },
          ),
          { numRuns: Math.max(10, Math.floor((target.propertyRuns ?? 60) / 2)) },
        );
      });
    });
  });
}

import { EventEmitter } from 'node:events';
import { median, result, timeRuns, type BenchmarkSuite } from '@calyx/bench';
import { createMemoryDatastore } from './index.js';

interface Versioned {
  value: string;
  createRevision: bigint;
  modRevision: bigint;
  version: bigint;
}

/** The plain-Map baseline keeps the same per-key metadata, without MVCC history or events. */
class PlainMap {
  rev = 1n;
  readonly map = new Map<string, Versioned>();
  readonly events = new EventEmitter();
  put(key: string, value: string): Versioned {
    this.rev++;
    const prev = this.map.get(key);
    const v = {
      value,
      createRevision: prev?.createRevision ?? this.rev,
      modRevision: this.rev,
      version: (prev?.version ?? 0n) + 1n,
    };
    this.map.set(key, v);
    this.events.emit('put', key, v);
    return v;
  }
}

export const suite: BenchmarkSuite = {
  id: 'datastore-memory',
  title: 'memory store: put, CAS, list, watch throughput vs a plain Map doing the same work',
  async run(ctx) {
    const n = ctx.quick ? 2_000 : 20_000;
    const listKeys = ctx.quick ? 1_000 : 10_000;
    const runs = ctx.quick ? 2 : 5;
    const opsPerSec = (ms: number[], ops: number) => ops / (median(ms) / 1000);

    // put: n writes of distinct keys.
    const putStore = await timeRuns(async () => {
      const s = createMemoryDatastore({ retainRevisions: 0 });
      for (let i = 0; i < n; i++) await s.put(`/bench/k${i}`, 'value');
      await s.close();
    }, runs);
    const putMap = await timeRuns(async () => {
      const m = new PlainMap();
      for (let i = 0; i < n; i++) await Promise.resolve(m.put(`/bench/k${i}`, 'value'));
    }, runs);

    // CAS: n updates of one key with the expected revision.
    const casStore = await timeRuns(async () => {
      const s = createMemoryDatastore({ retainRevisions: 0 });
      let kv = await s.put('/bench/cas', '0');
      for (let i = 0; i < n; i++)
        kv = await s.update('/bench/cas', String(i), { expectedModRevision: kv.modRevision });
      await s.close();
    }, runs);
    const casMap = await timeRuns(async () => {
      const m = new PlainMap();
      let v = m.put('/bench/cas', '0');
      for (let i = 0; i < n; i++) {
        const cur = await Promise.resolve(m.map.get('/bench/cas'));
        if (cur?.modRevision !== v.modRevision) throw new Error('conflict');
        v = m.put('/bench/cas', String(i));
      }
    }, runs);

    // list: a 10k-key prefix among other keys, 20 times.
    const listed = createMemoryDatastore({ retainRevisions: 0 });
    const plain = new PlainMap();
    for (let i = 0; i < listKeys; i++) {
      await listed.put(`/bench/list/${i}`, 'v');
      await listed.put(`/bench/other/${i}`, 'v');
      plain.put(`/bench/list/${i}`, 'v');
      plain.put(`/bench/other/${i}`, 'v');
    }
    const lists = 20;
    const listStore = await timeRuns(async () => {
      for (let i = 0; i < lists; i++)
        if ((await listed.list('/bench/list/')).items.length !== listKeys)
          throw new Error('short list');
    }, runs);
    const listMap = await timeRuns(async () => {
      for (let i = 0; i < lists; i++) {
        const items = [...plain.map]
          .filter(([k]) => k.startsWith('/bench/list/'))
          .sort(([a], [b]) => (a < b ? -1 : 1));
        if ((await Promise.resolve(items)).length !== listKeys) throw new Error('short list');
      }
    }, runs);
    await listed.close();

    // watch: n puts delivered to one watcher.
    const watchStore = await timeRuns(async () => {
      const s = createMemoryDatastore({ retainRevisions: 0 });
      let seen = 0;
      const done = (async () => {
        for await (const _ of s.watch('/bench/w/', { fromRevision: 2n })) if (++seen === n) break;
      })();
      for (let i = 0; i < n; i++) await s.put(`/bench/w/${i % 100}`, String(i));
      await done;
      await s.close();
    }, runs);
    const watchMap = await timeRuns(async () => {
      const m = new PlainMap();
      let seen = 0;
      const queue: unknown[] = [];
      let wake: (() => void) | undefined;
      m.events.on('put', (k: string, v: Versioned) => {
        queue.push([k, v]);
        wake?.();
      });
      const done = (async () => {
        while (seen < n) {
          if (queue.length === 0) await new Promise<void>((r) => (wake = r));
          seen += queue.splice(0).length;
        }
      })();
      for (let i = 0; i < n; i++) await Promise.resolve(m.put(`/bench/w/${i % 100}`, String(i)));
      await done;
    }, runs);

    const common = { lowerIsBetter: false, target: null, unit: 'ops/s' } as const;
    return [
      result({
        ...common,
        id: 'datastore-memory.put',
        description: `put of ${n} distinct keys (awaited one by one), with full MVCC history and event log, vs a Map keeping the same revisions.`,
        value: opsPerSec(putStore, n),
        baseline: { name: 'plain Map', value: opsPerSec(putMap, n) },
        details: { n, runs },
      }),
      result({
        ...common,
        id: 'datastore-memory.cas',
        description: `${n} compare-and-set updates of one key vs a Map get+compare+set.`,
        value: opsPerSec(casStore, n),
        baseline: { name: 'plain Map', value: opsPerSec(casMap, n) },
        details: { n, runs },
      }),
      result({
        ...common,
        unit: 'lists/s',
        id: 'datastore-memory.list',
        description: `list of a ${listKeys}-key prefix (among ${listKeys} other keys), in key order, vs filtering and sorting a Map.`,
        value: opsPerSec(listStore, lists),
        baseline: { name: 'plain Map', value: opsPerSec(listMap, lists) },
        details: { keys: listKeys, runs },
      }),
      result({
        ...common,
        unit: 'events/s',
        id: 'datastore-memory.watch',
        description: `${n} puts delivered to one prefix watcher vs a Map with an EventEmitter feeding a queue.`,
        value: opsPerSec(watchStore, n),
        baseline: { name: 'Map + EventEmitter', value: opsPerSec(watchMap, n) },
        details: { n, runs },
      }),
    ];
  },
};

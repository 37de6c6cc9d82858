import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeIntegration, eventually } from '@calyx/core/testing';
import { Syncer, type SyncerMessage, type WatchEvent } from '@calyx/datastore';
import { within } from '@calyx/datastore/testing';
import { EtcdCluster, TcpProxy, startEtcd, type StartedEtcd } from '@calyx/testbed';
import { EtcdDatastore } from './index.js';

describeIntegration('etcd adapter under faults', { commands: ['etcd'] }, () => {
  let etcd: StartedEtcd;
  const open: EtcdDatastore[] = [];
  const client = (endpoints: string[], namespace: string, requestTimeoutMs = 5000) => {
    const s = new EtcdDatastore({
      endpoints,
      namespace,
      requestTimeoutMs,
      maxReconnectDelayMs: 200,
    });
    open.push(s);
    return s;
  };
  beforeAll(async () => {
    etcd = await startEtcd();
  }, 30_000);
  afterAll(async () => {
    for (const s of open) await s.close();
    await etcd?.stop();
  });

  it('delivers a 3,000-event history replay exactly once and in order across a cut connection', async () => {
    const writer = client([etcd.endpoint], '/replay');
    const from = (await writer.revision()) + 1n;
    const pad = 'x'.repeat(2000);
    for (let i = 0; i < 3000; i += 50)
      await Promise.all(
        Array.from({ length: 50 }, (_, j) =>
          writer.put(`/e/${String(i + j).padStart(5, '0')}`, `${i + j}:${pad}`),
        ),
      );
    const last = await writer.revision();
    const proxy = await TcpProxy.start({ port: etcd.clientPort });
    try {
      const reader = client([`http://${proxy.address}`], '/replay');
      const seen: WatchEvent[] = [];
      let beforeCut = 0;
      const ac = new AbortController();
      const before = proxy.bytesToClient;
      const watching = (async () => {
        for await (const m of reader.watch('/e/', { fromRevision: from, signal: ac.signal })) {
          if (m.type === 'resync') throw new Error('unexpected resync');
          seen.push(m);
          if (proxy.connections === 1) beforeCut++;
          if (m.type === 'put' && m.kv.modRevision === last) return;
        }
      })();
      // etcd sends the replay in responses of up to 1,000 revisions (~2 MB here). The
      // connection drops in the middle of the second: the first was delivered, the rest is
      // in no buffer of the client and must be asked for again from the right revision.
      void before;
      await within(30_000, 'half the replay', proxy.cutAfterBytesToClient(3_000_000));
      await within(60_000, 'the whole replay', watching);
      ac.abort();
      expect(proxy.connections).toBeGreaterThan(1);
      expect(beforeCut).toBeGreaterThan(0);
      expect(beforeCut).toBeLessThan(3000);
      expect(seen).toHaveLength(3000);
      const revs = seen.map((e) => (e.type === 'put' ? e.kv.modRevision : e.revision));
      for (let i = 1; i < revs.length; i++) expect(revs[i]! > revs[i - 1]!).toBe(true);
      expect(revs[0]).toBe(from);
      expect(new Set(seen.map((e) => (e.type === 'put' ? e.kv.key : e.key))).size).toBe(3000);
    } finally {
      await proxy.close();
    }
  }, 120_000);

  it('resyncs with exactly the differences when the history it missed was compacted', async () => {
    const direct = client([etcd.endpoint], '/gap');
    for (const k of ['same', 'changed', 'deleted', 'recreated']) await direct.put(`/s/${k}`, '1');
    const proxy = await TcpProxy.start({ port: etcd.clientPort });
    const syncer = new Syncer(client([`http://${proxy.address}`], '/gap'), {
      prefixes: ['/s/'],
      retryBaseMs: 20,
      retryMaxMs: 200,
    });
    const it = syncer[Symbol.asyncIterator]();
    const next = async () => {
      const r = await within(20_000, 'a syncer message', it.next());
      if (r.done) throw new Error('syncer ended');
      return r.value;
    };
    const until = async (type: SyncerMessage['type']) => {
      const seen: SyncerMessage[] = [];
      for (;;) {
        const m = await next();
        seen.push(m);
        if (m.type === type) return seen;
      }
    };
    const changes = (msgs: SyncerMessage[]) =>
      msgs.flatMap((m) =>
        m.type === 'changes'
          ? m.changes.map((c) => (c.type === 'put' ? `put ${c.key}=${c.kv.value}` : `del ${c.key}`))
          : [],
      );
    try {
      await until('in-sync');
      // The watcher falls behind: its connection is gone while the store moves on and compacts.
      proxy.cut({ stayDown: true });
      await direct.put('/s/changed', '2');
      await direct.delete('/s/deleted');
      await direct.delete('/s/recreated');
      await direct.put('/s/recreated', '1');
      await direct.put('/s/new', '1');
      await direct.put('/s/changed', '3');
      await direct.compact(await direct.revision());
      proxy.restore();
      const after = await until('in-sync');
      expect(after.some((m) => m.type === 'resyncing')).toBe(true);
      expect(changes(after).sort()).toEqual([
        'del /s/deleted',
        'put /s/changed=3',
        'put /s/new=1',
        'put /s/recreated=1',
      ]);
      await direct.put('/s/after', 'x');
      expect(changes([await next()])).toEqual(['put /s/after=x']);
    } finally {
      await syncer.close();
      await proxy.close();
    }
  }, 60_000);

  it('loses no acknowledged write and no watch event when a 3-member cluster loses its leader', async () => {
    await using cluster = await EtcdCluster.start(3);
    const store = client(cluster.endpoints, '/ha', 2000);
    // The watch talks to the leader only: killing it cuts the watch, which must resume from
    // where it was once that member is back.
    const leader = await cluster.leader();
    const watcher = client([cluster.endpoints[leader]!], '/ha');
    const from = (await store.revision()) + 1n;
    const events: WatchEvent[] = [];
    const ac = new AbortController();
    const watching = (async () => {
      for await (const m of watcher.watch('/w/', { fromRevision: from, signal: ac.signal })) {
        if (m.type === 'resync') throw new Error('unexpected resync');
        events.push(m);
      }
    })();
    const acked = new Map<string, bigint>();
    let failures = 0;
    let writing = true;
    const writers = [0, 1, 2].map(async (w) => {
      for (let n = 0; writing; n++) {
        const key = `/w/${w}/${n}`;
        try {
          acked.set(key, (await store.put(key, `${w}:${n}`)).modRevision);
        } catch {
          failures++;
        }
      }
    });
    await eventually(() => acked.size >= 100, { what: '100 writes before the fault' });
    // The leader now (on a loaded machine an election may have moved it since: then the
    // watch's member survives and only the writers see the fault).
    const killed = await cluster.leader();
    await cluster.kill(killed);
    const beforeRestart = acked.size;
    await eventually(() => acked.size >= beforeRestart + 100, {
      timeoutMs: 30_000,
      what: 'writes going on without the old leader',
    });
    await cluster.restart(killed);
    const afterRestart = acked.size;
    await eventually(() => acked.size >= afterRestart + 100, {
      timeoutMs: 30_000,
      what: 'writes after the restart',
    });
    writing = false;
    await Promise.all(writers);

    const state = await store.list('/w/');
    const stored = new Map(state.items.map((kv) => [kv.key, kv.modRevision]));
    for (const [key, rev] of acked) expect(stored.get(key), key).toBe(rev);
    // The watch saw every revision of the prefix once, in order: exactly the stored keys'.
    await eventually(() => events.length >= stored.size, {
      timeoutMs: 30_000,
      what: 'the watch catching up',
    });
    ac.abort();
    await watching;
    const revs = events.map((e) => (e.type === 'put' ? e.kv.modRevision : e.revision));
    for (let i = 1; i < revs.length; i++) expect(revs[i]! > revs[i - 1]!).toBe(true);
    expect(revs).toEqual([...stored.values()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)));
    console.log(
      `leader killed and restarted${killed === leader ? ' (the watch was on it)' : ' (leadership had moved: the watch was not on it)'}: ${acked.size} writes acknowledged, ${failures} failed (not acknowledged), ${events.length} events watched`,
    );
  }, 180_000);
});

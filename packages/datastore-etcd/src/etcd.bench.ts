import { Etcd3 } from 'etcd3';
import {
  interleaved,
  median,
  result,
  type BenchmarkResult,
  type BenchmarkSuite,
  LANES,
  lanes,
  endpointValue,
} from '@calyx/bench';
import { startEtcd } from '@calyx/testbed';
import { EtcdDatastore } from './index.js';

// The adapter against the bare etcd3 client doing the same work on the same etcd. Each
// measurement runs in rounds; who goes first alternates, so neither profits from the
// other's warm-up (or suffers from its garbage).

type Side = (round: number) => Promise<number>;
const alternate = (rounds: number, ours: Side, bare: Side) => interleaved(rounds, { ours, bare });

export const suite: BenchmarkSuite = {
  id: 'datastore-etcd',
  title: 'etcd adapter vs the bare etcd3 client: put, CAS, list 10k endpoints, watch replay',
  async run(ctx) {
    const ops = ctx.quick ? 2000 : 5000;
    const rounds = ctx.quick ? 2 : 6;
    const etcd = await startEtcd();
    const ours = new EtcdDatastore({ endpoints: [etcd.endpoint] });
    const bare = new Etcd3({
      hosts: [etcd.endpoint],
      grpcOptions: { 'grpc.max_receive_message_length': 256 * 1024 * 1024 },
    });
    const rate = (n: number, ms: number) => n / (ms / 1000);
    try {
      // Both clients connected and warmed up before anything is timed.
      await lanes(2000, (_, i) => ours.put(`/bench/warm/o/${i}`, 'w'));
      await lanes(2000, (_, i) => bare.put(`/bench/warm/b/${i}`).value('w').exec());

      const put = await alternate(
        rounds,
        async (r) =>
          rate(ops, await lanes(ops, (_, i) => ours.put(`/bench/o/put/${r}/${i}`, `v${i}`))),
        async (r) =>
          rate(
            ops,
            await lanes(ops, (_, i) => bare.put(`/bench/b/put/${r}/${i}`).value(`v${i}`).exec()),
          ),
      );

      // Compare-and-set: each lane updates its own key with the revision it last saw.
      const cas = await alternate(
        rounds,
        async (r) => {
          const revs: bigint[] = [];
          for (let l = 0; l < LANES; l++)
            revs[l] = (await ours.put(`/bench/o/cas/${r}/${l}`, '0')).modRevision;
          return rate(
            ops,
            await lanes(ops, async (l, i) => {
              revs[l] = (
                await ours.update(`/bench/o/cas/${r}/${l}`, String(i), {
                  expectedModRevision: revs[l]!,
                })
              ).modRevision;
            }),
          );
        },
        async (r) => {
          const revs: string[] = [];
          for (let l = 0; l < LANES; l++)
            revs[l] = (await bare.put(`/bench/b/cas/${r}/${l}`).value('0').exec()).header.revision;
          return rate(
            ops,
            await lanes(ops, async (l, i) => {
              const key = `/bench/b/cas/${r}/${l}`;
              const t = await bare
                .if(key, 'Mod', '==', revs[l]!)
                .then(bare.put(key).value(String(i)))
                .commit();
              if (!t.succeeded) throw new Error('bare CAS lost: the benchmark is wrong');
              revs[l] = t.header.revision;
            }),
          );
        },
      );

      // A list of 10,000 endpoint-sized values; both sides end with keys, values and revisions.
      const n = 10_000;
      await lanes(n, (_, i) =>
        ours.put(`/bench/list/ep/${String(i).padStart(6, '0')}`, endpointValue(i)),
      );
      const list = await alternate(
        rounds,
        async () => {
          const t0 = performance.now();
          const got = await ours.list('/bench/list/ep/');
          if (got.items.length !== n) throw new Error(`adapter listed ${got.items.length}`);
          return performance.now() - t0;
        },
        async () => {
          const t0 = performance.now();
          const r = await bare.getAll().prefix('/bench/list/ep/').exec();
          const items = r.kvs.map((kv) => ({
            key: kv.key.toString(),
            value: kv.value.toString(),
            modRevision: BigInt(kv.mod_revision),
          }));
          if (items.length !== n) throw new Error(`bare client listed ${items.length}`);
          return performance.now() - t0;
        },
      );

      // Watch: a 10,000-event history replayed from its first revision.
      const from = (await ours.revision()) + 1n;
      await lanes(n, (_, i) => ours.put(`/bench/watch/${i}`, endpointValue(i)));
      const last = await ours.revision();
      const watch = await alternate(
        rounds,
        async () => {
          const t0 = performance.now();
          let count = 0;
          for await (const ev of ours.watch('/bench/watch/', { fromRevision: from })) {
            count++;
            if (ev.type === 'put' && ev.kv.modRevision === last) break;
          }
          if (count !== n) throw new Error(`adapter watched ${count}`);
          return rate(count, performance.now() - t0);
        },
        async () => {
          const t0 = performance.now();
          let count = 0;
          const w = await bare.watch().prefix('/bench/watch/').startRevision(String(from)).create();
          await new Promise<void>((resolve) => {
            w.on('put', (kv) => {
              count++;
              if (kv.mod_revision === String(last)) resolve();
            });
          });
          const r = rate(count, performance.now() - t0);
          await w.cancel();
          if (count !== n) throw new Error(`bare client watched ${count}`);
          return r;
        },
      );
      const m = { put, cas, list, watch };
      for (const [k, v] of Object.entries(m))
        ctx.log(
          `${k}: ours ${v.ours.map((x) => x.toFixed(0)).join(', ')} | bare ${v.bare.map((x) => x.toFixed(0)).join(', ')}`,
        );
      const thr = (k: 'put' | 'cas' | 'watch', what: string, unit: string): BenchmarkResult =>
        result({
          id: `datastore-etcd.${k}`,
          description: `${what}; median of ${rounds} rounds, who goes first alternating. Baseline: the bare etcd3 client doing the same work on the same etcd in the same run. Target: ≥ 0.9×.`,
          unit,
          lowerIsBetter: false,
          value: median(m[k].ours),
          baseline: { name: 'bare etcd3 client', value: median(m[k].bare) },
          target: 0.9,
          details: {
            ops,
            lanes: LANES,
            ours: m[k].ours.map(Math.round),
            bare: m[k].bare.map(Math.round),
          },
        });
      return [
        thr('put', `${ops} puts from ${LANES} concurrent lanes`, 'ops/s'),
        thr(
          'cas',
          `${ops} compare-and-set updates (each lane its own key, expected mod revision) from ${LANES} lanes`,
          'ops/s',
        ),
        thr(
          'watch',
          'Events per second of a watch replaying a 10,000-event history (endpoint-sized values) from its first revision',
          'events/s',
        ),
        result({
          id: 'datastore-etcd.list-10k',
          description: `Listing 10,000 endpoint-sized values under one prefix, as keys, values and revisions: the adapter (pages of up to 10,000 keys pinned to one revision, typed KeyValues) vs the bare client's getAll().prefix() decoded to the same; median of ${rounds}. Target: ≤ 1.2× the time.`,
          unit: 'ms',
          lowerIsBetter: true,
          value: median(list.ours),
          baseline: { name: 'bare etcd3 getAll().prefix()', value: median(list.bare) },
          target: 1.2,
          details: { keys: n, ours: list.ours.map(Math.round), bare: list.bare.map(Math.round) },
        }),
      ];
    } finally {
      await ours.close();
      bare.close();
      await etcd.stop();
    }
  },
};

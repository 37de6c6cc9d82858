import { Redis } from 'ioredis';
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
import { EtcdDatastore } from '@calyx/datastore-etcd';
import { startEtcd, startRedis } from '@calyx/testbed';
import { RedisDatastore } from './index.js';

// The adapter against bare ioredis doing the same work on the same redis-server, and against
// the etcd adapter on a private etcd, all three in the same run. Each measurement runs in
// rounds; the order of the three sides changes every round (each order once in six rounds,
// reversed in the second), so none profits from another's warm-up (or suffers from its garbage).

type Side = (round: number) => Promise<number>;

/**
 * Bare ioredis's write: the minimal script reaching the adapter's final state in one round
 * trip — the key's hash (v c m n l), the key in the index, the store revision, and one stream
 * entry `<rev>-0` holding the event in the adapter's encoding (with the previous value) — and,
 * when ARGV[3] is not empty, only if the key's modRevision is ARGV[3]. Left out: what the
 * adapter's one script also does (lease checks and the expiry sweep before every write, the
 * transaction interpreter, the token chain that detects rewritten history, history trimming).
 */
const BARE_WRITE = String.raw`
local META = KEYS[1]
local P = string.sub(META, 1, -5)
local k, v, expected = ARGV[1], ARGV[2], ARGV[3]
local h = P .. 'k:' .. k
local prev = redis.call('HMGET', h, 'v', 'c', 'm', 'n')
if expected ~= '' and prev[3] ~= expected then return {0, prev[3] or '0'} end
local r = string.format('%d', redis.call('HINCRBY', META, 'rev', 1))
local c, n = r, '1'
local e
if prev[2] then
  c = prev[2]
  n = string.format('%d', tonumber(prev[4]) + 1)
  e = 'p ' .. #k .. ' ' .. #v .. ' ' .. c .. ' ' .. n .. ' 0 1 ' .. #prev[1] .. ' ' .. prev[2] ..
    ' ' .. prev[3] .. ' ' .. prev[4] .. ' 0\n' .. k .. v .. prev[1]
else
  redis.call('ZADD', P .. 'idx', 0, k)
  e = 'p ' .. #k .. ' ' .. #v .. ' ' .. r .. ' 1 0 0 0 0 0 0 0\n' .. k .. v
end
redis.call('HSET', h, 'v', v, 'c', c, 'm', r, 'n', n, 'l', '0')
redis.call('XADD', P .. 'log', r .. '-0', 'e', e)
return {1, r}
`;

/**
 * Bare ioredis's list: every key of a ZRANGEBYLEX range of the index with its hash, and the
 * store revision, in one script — one round trip at one revision, but Redis is blocked for
 * the whole read (the adapter pages by 1,000 keys so other clients get in between).
 */
const BARE_LIST = String.raw`
local META = KEYS[1]
local P = string.sub(META, 1, -5)
local out = {redis.call('HGET', META, 'rev') or '1'}
for _, k in ipairs(redis.call('ZRANGEBYLEX', P .. 'idx', ARGV[1], ARGV[2])) do
  local r = redis.call('HMGET', P .. 'k:' .. k, 'v', 'c', 'm', 'n')
  if r[2] then
    out[#out + 1] = k
    out[#out + 1] = r[1]
    out[#out + 1] = r[2]
    out[#out + 1] = r[3]
    out[#out + 1] = r[4]
  end
end
return out
`;

type StreamEntry = [id: Buffer, fields: Buffer[]];

interface BareEvent {
  key: string;
  value: string;
  createRevision: bigint;
  modRevision: bigint;
  version: bigint;
  prevValue: string | undefined;
}

/** The events of one stream entry, decoded to keys, values and revisions with nothing else. */
function bareDecode(rev: bigint, fields: Buffer[], out: BareEvent[]): void {
  let blob: Buffer | undefined;
  for (let i = 0; i + 1 < fields.length; i += 2)
    if (fields[i]!.toString('latin1') === 'e') blob = fields[i + 1];
  if (!blob) throw new Error('stream entry without events');
  let pos = 0;
  while (pos < blob.length) {
    const nl = blob.indexOf(0x0a, pos);
    const h = blob.toString('latin1', pos, nl).split(' ');
    const klen = Number(h[1]);
    const vlen = Number(h[2]);
    const pvlen = h[6] === '1' ? Number(h[7]) : 0;
    const k = nl + 1;
    const v = k + klen;
    const p = v + vlen;
    out.push({
      key: blob.toString('utf8', k, v),
      value: blob.toString('utf8', v, p),
      createRevision: BigInt(h[3]!),
      modRevision: rev,
      version: BigInt(h[4]!),
      prevValue: pvlen ? blob.toString('utf8', p, p + pvlen) : undefined,
    });
    pos = p + pvlen;
  }
}

export const suite: BenchmarkSuite = {
  id: 'datastore-redis',
  title:
    'Redis adapter vs bare ioredis and vs the etcd adapter: put, CAS, list 10k endpoints, watch replay',
  async run(ctx) {
    const ops = ctx.quick ? 2000 : 5000;
    const rounds = ctx.quick ? 2 : 6;
    const redis = await startRedis();
    const etcd = await startEtcd().catch(async (e: unknown) => {
      await redis.stop();
      throw e;
    });
    const conn = { host: '127.0.0.1', port: redis.port };
    const ours = await RedisDatastore.open({ redis: conn, namespace: 'bench' });
    // The adapter's protocol (RESP2), so both clients parse the same reply shapes.
    const bare = new Redis({ ...conn, protocol: 2 });
    const peer = new EtcdDatastore({ endpoints: [etcd.endpoint] });
    const bareMeta = '{bare}:meta';
    const rate = (n: number, ms: number) => n / (ms / 1000);
    try {
      const writeSha = String(await bare.script('LOAD', BARE_WRITE));
      const listSha = String(await bare.script('LOAD', BARE_LIST));
      const bareWrite = async (key: string, value: string, expected = ''): Promise<string> => {
        const r = (await bare.evalsha(writeSha, 1, bareMeta, key, value, expected)) as [
          number,
          string,
        ];
        if (r[0] !== 1) throw new Error('bare CAS lost: the benchmark is wrong');
        return r[1];
      };

      // All three clients connected and warmed up before anything is timed.
      await lanes(2000, (_, i) => ours.put(`/bench/warm/o/${i}`, 'w'));
      await lanes(2000, (_, i) => bareWrite(`/bench/warm/b/${i}`, 'w'));
      await lanes(2000, (_, i) => peer.put(`/bench/warm/e/${i}`, 'w'));

      const put = await interleaved(rounds, {
        ours: async (r) =>
          rate(ops, await lanes(ops, (_, i) => ours.put(`/bench/o/put/${r}/${i}`, `v${i}`))),
        bare: async (r) =>
          rate(ops, await lanes(ops, (_, i) => bareWrite(`/bench/b/put/${r}/${i}`, `v${i}`))),
        etcd: async (r) =>
          rate(ops, await lanes(ops, (_, i) => peer.put(`/bench/e/put/${r}/${i}`, `v${i}`))),
      });

      // Compare-and-set: each lane updates its own key with the revision it last saw.
      const casWith =
        (
          write: (key: string, value: string, expected?: string) => Promise<string>,
          side: string,
        ): Side =>
        async (r) => {
          const revs: string[] = [];
          for (let l = 0; l < LANES; l++)
            revs[l] = await write(`/bench/${side}/cas/${r}/${l}`, '0');
          return rate(
            ops,
            await lanes(ops, async (l, i) => {
              revs[l] = await write(`/bench/${side}/cas/${r}/${l}`, String(i), revs[l]!);
            }),
          );
        };
      const viaStore =
        (s: RedisDatastore | EtcdDatastore) =>
        async (key: string, value: string, expected?: string): Promise<string> =>
          String(
            (expected === undefined
              ? await s.put(key, value)
              : await s.update(key, value, { expectedModRevision: BigInt(expected) })
            ).modRevision,
          );
      const cas = await interleaved(rounds, {
        ours: casWith(viaStore(ours), 'o'),
        bare: casWith(bareWrite, 'b'),
        etcd: casWith(viaStore(peer), 'e'),
      });

      // A list of 10,000 endpoint-sized values; every side ends with keys, values and
      // revisions. Adapter and bare ioredis read the very same Redis keys.
      const n = 10_000;
      const listPrefix = '/bench/list/ep/';
      const listKey = (i: number) => `${listPrefix}${String(i).padStart(6, '0')}`;
      await lanes(n, (_, i) => ours.put(listKey(i), endpointValue(i)));
      await lanes(n, (_, i) => peer.put(listKey(i), endpointValue(i)));
      const listSide =
        (fn: () => Promise<number>): Side =>
        async () => {
          const t0 = performance.now();
          const got = await fn();
          if (got !== n) throw new Error(`listed ${got} of ${n}`);
          return performance.now() - t0;
        };
      const list = await interleaved(rounds, {
        ours: listSide(async () => (await ours.list(listPrefix)).items.length),
        bare: listSide(async () => {
          const r = (await bare.evalsha(
            listSha,
            1,
            ours.keys.meta,
            `[${listPrefix}`,
            `(${listPrefix.slice(0, -1)}0`,
          )) as string[];
          const listed = { revision: BigInt(r[0]!), items: [] as object[] };
          for (let i = 1; i + 4 < r.length; i += 5)
            listed.items.push({
              key: r[i]!,
              value: r[i + 1]!,
              createRevision: BigInt(r[i + 2]!),
              modRevision: BigInt(r[i + 3]!),
              version: BigInt(r[i + 4]!),
            });
          return listed.items.length;
        }),
        etcd: listSide(async () => (await peer.list(listPrefix)).items.length),
      });

      // Watch: a 10,000-event history replayed from its first revision.
      const from = (await ours.revision()) + 1n;
      await lanes(n, (_, i) => ours.put(`/bench/watch/${i}`, endpointValue(i)));
      const last = await ours.revision();
      const etcdFrom = (await peer.revision()) + 1n;
      await lanes(n, (_, i) => peer.put(`/bench/watch/${i}`, endpointValue(i)));
      const etcdLast = await peer.revision();
      const watchVia =
        (s: RedisDatastore | EtcdDatastore, first: bigint, end: bigint): Side =>
        async () => {
          const t0 = performance.now();
          let count = 0;
          for await (const ev of s.watch('/bench/watch/', { fromRevision: first })) {
            count++;
            if (ev.type === 'put' && ev.kv.modRevision === end) break;
          }
          if (count !== n) throw new Error(`adapter watched ${count}`);
          return rate(count, performance.now() - t0);
        };
      const watch = await interleaved(rounds, {
        ours: watchVia(ours, from, last),
        // The same stream, read the way the adapter's watch reads it: a connection of its
        // own, XREAD of up to 1,000 entries after the last one read, each entry's events
        // decoded to keys, values and revisions.
        bare: async () => {
          const t0 = performance.now();
          const w = new Redis({ ...conn, protocol: 2 });
          try {
            const events: BareEvent[] = [];
            for (let next = from; next <= last;) {
              const reply = (await w.callBuffer(
                'XREAD',
                'COUNT',
                '1000',
                'STREAMS',
                ours.keys.log,
                `${next - 1n}-0`,
              )) as [Buffer, StreamEntry[]][] | null;
              for (const [id, fields] of reply?.[0]?.[1] ?? []) {
                const s = id.toString('latin1');
                const rev = BigInt(s.slice(0, s.indexOf('-')));
                bareDecode(rev, fields, events);
                next = rev + 1n;
              }
            }
            if (events.length !== n) throw new Error(`bare ioredis watched ${events.length}`);
            return rate(events.length, performance.now() - t0);
          } finally {
            w.disconnect();
          }
        },
        etcd: watchVia(peer, etcdFrom, etcdLast),
      });

      const m = { put, cas, list, watch };
      for (const [k, v] of Object.entries(m))
        ctx.log(
          `${k}: ours ${v.ours.map((x) => x.toFixed(0)).join(', ')} | bare ${v.bare.map((x) => x.toFixed(0)).join(', ')} | etcd ${v.etcd.map((x) => x.toFixed(0)).join(', ')}`,
        );
      const order = `median of ${rounds} rounds, the order of adapter, bare ioredis and etcd adapter changing every round`;
      const BARE_WRITE_TEXT =
        "Baseline: bare ioredis on the same redis-server in the same run, one EVALSHA of a minimal Lua script reaching the adapter's final state (the key's hash with value and revisions, the index entry, the store revision, one stream entry per revision with the event in the adapter's encoding) — without the adapter's lease check and expiry sweep, transaction interpreter, history-rewrite token chain and history trimming. A script, not MULTI: the revision has to be read and the compare checked inside the same atomic step, as the adapter's script does.";
      const what = {
        put: `${ops} puts from ${LANES} concurrent lanes`,
        cas: `${ops} compare-and-set updates (each lane its own key, expected mod revision) from ${LANES} lanes`,
        watch:
          'Events per second of a watch replaying a 10,000-event history (endpoint-sized values) from its first revision',
      };
      const bareText = {
        put: BARE_WRITE_TEXT,
        cas: `${BARE_WRITE_TEXT} The compare is the script checking the key's modRevision before writing.`,
        watch:
          "Baseline: bare ioredis reading the very same stream the same way — a connection of its own, XREAD COUNT 1000 after the last entry read — and decoding each entry's events to keys, values and revisions; without the adapter's async generator (one yield per event), prefix filter, entry-gap and token-chain checks and reconnect handling.",
      };
      const details = (k: keyof typeof m, other: 'bare' | 'etcd') => ({
        ...(k === 'list' || k === 'watch' ? { keys: n } : { ops, lanes: LANES }),
        ours: m[k].ours.map(Math.round),
        [other]: m[k][other].map(Math.round),
        ...(k === 'watch'
          ? {
              msToDeliver10k: {
                ours: Math.round((n / median(m[k].ours)) * 1000),
                [other]: Math.round((n / median(m[k][other])) * 1000),
              },
            }
          : {}),
      });
      const thr = (k: 'put' | 'cas' | 'watch', unit: string): BenchmarkResult[] => [
        result({
          id: `datastore-redis.${k}`,
          description: `${what[k]}; ${order}. ${bareText[k]} The issue sets no bound on the ratio.`,
          unit,
          lowerIsBetter: false,
          value: median(m[k].ours),
          baseline: { name: 'bare ioredis', value: median(m[k].bare) },
          target: null,
          details: details(k, 'bare'),
        }),
        result({
          id: `datastore-redis.${k}-vs-etcd`,
          description: `The same ${k === 'watch' ? 'replay' : 'work'} through the etcd adapter (EtcdDatastore) on a private single-member etcd on the same machine, in the same run (${order}).`,
          unit,
          lowerIsBetter: false,
          value: median(m[k].ours),
          baseline: { name: 'etcd adapter', value: median(m[k].etcd) },
          target: null,
          details: details(k, 'etcd'),
        }),
      ];
      return [
        ...thr('put', 'ops/s'),
        ...thr('cas', 'ops/s'),
        ...thr('watch', 'events/s'),
        result({
          id: 'datastore-redis.list-10k',
          description: `Listing 10,000 endpoint-sized values under one prefix, as keys, values and revisions: the adapter (pages of 1,000 keys read by its script, pinned to the revision of the first page, typed KeyValues) vs bare ioredis reading the very same Redis keys with one EVALSHA of a minimal script (ZRANGEBYLEX of the index, HMGET of each key's hash, the store revision — one round trip at one revision, but Redis blocked for the whole read), decoded to the same; ${order}. The issue sets no bound on the ratio.`,
          unit: 'ms',
          lowerIsBetter: true,
          value: median(list.ours),
          baseline: { name: 'bare ioredis script', value: median(list.bare) },
          target: null,
          details: details('list', 'bare'),
        }),
        result({
          id: 'datastore-redis.list-10k-vs-etcd',
          description: `The same list through the etcd adapter (EtcdDatastore) on a private single-member etcd on the same machine, in the same run (${order}).`,
          unit: 'ms',
          lowerIsBetter: true,
          value: median(list.ours),
          baseline: { name: 'etcd adapter', value: median(list.etcd) },
          target: null,
          details: details('list', 'etcd'),
        }),
      ];
    } finally {
      await ours.close();
      bare.disconnect();
      await peer.close();
      await etcd.stop();
      await redis.stop();
    }
  },
};

import { result, type BenchmarkResult, type BenchmarkSuite } from '@calyx/bench';
import { ResourceClient, type Datastore } from '@calyx/datastore';
import { createMemoryDatastore } from '@calyx/datastore-memory';
import { EtcdDatastore } from '@calyx/datastore-etcd';
import { startEtcd } from '@calyx/testbed';
import { parseResource } from '@calyx/model';
import { Ipam, subnetPool } from './index.js';

/** Allocations/s of 4 concurrent allocators (4 hosts) vs the store's raw CAS rate with 4 concurrent writers. */
export async function measureIpam(
  open: () => Promise<Datastore>,
  n: number,
): Promise<{ ipam: number; cas: number }> {
  const setupStore = await open();
  const subnet = parseResource('Subnet', { id: 'bench', networkId: 'bench', cidr: '10.90.0.0/16' });
  const client = new ResourceClient(setupStore);
  await client
    .txn()
    .put('Network', { id: 'bench' })
    .put('Subnet', subnet)
    .put('IpPool', subnetPool(subnet))
    .commit();
  const workers = 4;
  const stores = await Promise.all(Array.from({ length: workers }, () => open()));
  // The raw CAS loop below, also as a warm-up: a fresh store (and client) is markedly slower
  // for its first thousands of writes, and IPAM is measured first.
  const rawCas = async (count: number, tag: string) =>
    Promise.all(
      stores.map(async (s, w) => {
        let kv = await s.put(`/bench/cas/${tag}/${w}`, '0');
        for (let i = 0; i < count / workers; i++)
          kv = await s.update(kv.key, String(i), { expectedModRevision: kv.modRevision });
      }),
    );
  await rawCas(Math.min(n, 4_000), 'warm-up');
  let t0 = performance.now();
  await Promise.all(
    stores.map(async (s, w) => {
      const ipam = new Ipam(s);
      for (let i = 0; i < n / workers; i++)
        await ipam.autoAssign({ subnet, handleId: `bench.${w}.${i}`, host: `host-${w}` });
    }),
  );
  const ipamRate = n / ((performance.now() - t0) / 1000);
  // The raw floor: each writer compare-and-sets its own key with the revision it knows.
  t0 = performance.now();
  await rawCas(n, 'measured');
  const casRate = n / ((performance.now() - t0) / 1000);
  for (const s of stores) await s.close();
  await setupStore.close();
  return { ipam: ipamRate, cas: casRate };
}

export function ipamResult(
  store: string,
  n: number,
  m: { ipam: number; cas: number },
): BenchmarkResult {
  return result({
    id: `ipam.${store}.alloc-4`,
    description: `${n} auto-assigned addresses by 4 concurrent allocators (4 hosts, block affinity) on the ${store} store, vs the same store's raw compare-and-set rate with 4 concurrent writers (both after the same warm-up of raw compare-and-sets). Each allocation is one transaction of a block and a handle, compared on both. Issue target: ≥ 50%.`,
    unit: 'ops/s',
    lowerIsBetter: false,
    value: m.ipam,
    baseline: { name: `raw CAS (${store})`, value: m.cas },
    target: 0.5,
    details: { n },
  });
}

export const suite: BenchmarkSuite = {
  id: 'ipam',
  title: 'IPAM allocations per second with 4 concurrent allocators vs raw compare-and-set',
  async run(ctx) {
    const n = ctx.quick ? 2_000 : 10_000;
    let root: ReturnType<typeof createMemoryDatastore> | undefined;
    const open = async (): Promise<Datastore> =>
      root ? root.connect() : (root = createMemoryDatastore());
    const m = await measureIpam(open, n);
    const out = [ipamResult('memory', n, m)];
    ctx.log(`memory: ${m.ipam.toFixed(0)} allocations/s vs ${m.cas.toFixed(0)} raw CAS/s`);
    // The production store: a real etcd on loopback, each allocator its own client.
    const etcd = await startEtcd();
    try {
      const onEtcd = async (): Promise<Datastore> =>
        new EtcdDatastore({ endpoints: [etcd.endpoint], namespace: '/ipam-bench' });
      const e = await measureIpam(onEtcd, n);
      ctx.log(`etcd: ${e.ipam.toFixed(0)} allocations/s vs ${e.cas.toFixed(0)} raw CAS/s`);
      out.push(ipamResult('etcd', n, e));
    } finally {
      await etcd.stop();
    }
    return out;
  },
};

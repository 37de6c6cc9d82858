import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeIntegration } from '@calyx/core/testing';
import { ResourceClient } from '@calyx/datastore';
import { EtcdDatastore } from '@calyx/datastore-etcd';
import { parseResource } from '@calyx/model';
import { startEtcd, type StartedEtcd } from '@calyx/testbed';
import { Ipam, allocateConcurrently, checkIpam, releaseConcurrently, subnetPool } from './index.js';

describeIntegration('IPAM on etcd', { commands: ['etcd'] }, () => {
  let etcd: StartedEtcd;
  beforeAll(async () => {
    etcd = await startEtcd();
  }, 30_000);
  afterAll(async () => {
    await etcd?.stop();
  });

  it('never hands out one address twice: 4 allocators (own etcd clients), 10,000 addresses', async () => {
    const open = () =>
      new EtcdDatastore({ endpoints: [etcd.endpoint], namespace: '/ipam-contention' });
    const setup = open();
    const subnet = parseResource('Subnet', { id: 's1', networkId: 'n1', cidr: '10.80.0.0/16' });
    await new ResourceClient(setup)
      .txn()
      .create('Network', { id: 'n1' })
      .create('Subnet', subnet)
      .create('IpPool', subnetPool(subnet))
      .commit();
    const allocators = Array.from({ length: 4 }, (_, i) => ({
      host: `compute-${i + 1}`,
      ipam: new Ipam(open()),
    }));
    try {
      const t0 = performance.now();
      const all = (await allocateConcurrently(allocators, subnet, 2500)).flat();
      const seconds = (performance.now() - t0) / 1000;
      console.log(
        `10,000 addresses by 4 allocators on etcd in ${seconds.toFixed(1)} s (${(10_000 / seconds).toFixed(0)}/s)`,
      );
      expect(all.length).toBe(10_000);
      expect(new Set(all).size).toBe(10_000);
      const report = await checkIpam(allocators[0]!.ipam);
      expect(report).toMatchObject({
        allocations: 10_000,
        orphanHandles: [],
        handleMismatches: [],
      });
      await releaseConcurrently(allocators, 2500);
      expect(await checkIpam(allocators[0]!.ipam)).toMatchObject({
        blocks: 0,
        allocations: 0,
        ok: true,
      });
    } finally {
      for (const a of allocators) await a.ipam.store.close();
      await setup.close();
    }
  }, 300_000);
});

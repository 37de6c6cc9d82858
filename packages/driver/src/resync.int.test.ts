import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeIntegration } from '@calyx/core/testing';
import { ResourceClient } from '@calyx/datastore';
import { EtcdDatastore } from '@calyx/datastore-etcd';
import { Ipam, checkIpam } from '@calyx/ipam';
import { startEtcd, type StartedEtcd } from '@calyx/testbed';
import {
  beforeFirstTxn,
  buildWithDriver,
  datastoreState,
  drift,
  syntheticSnapshot,
} from './resync.bench.js';
import { CalyxDriver, resyncDatastore } from './index.js';

describeIntegration('resync on etcd', { commands: ['etcd'] }, () => {
  let etcd: StartedEtcd;
  const opened: EtcdDatastore[] = [];
  const open = (ns: string) => {
    const s = new EtcdDatastore({ endpoints: [etcd.endpoint], namespace: `/resync-int/${ns}` });
    opened.push(s);
    return s;
  };
  beforeAll(async () => {
    etcd = await startEtcd();
  }, 30_000);
  afterAll(async () => {
    for (const s of opened) await s.close();
    await etcd?.stop();
  });

  it('repairs missing, stale and orphan records exactly, and never overwrites a concurrent newer write', async () => {
    const truth = syntheticSnapshot(200, { networks: 4, hosts: 5 });
    const drifted = drift(truth, { stale: 0.05, orphan: 0.05, missing: 0.05, otherKinds: true });
    const expected = await buildWithDriver(open('expected'), truth);
    const setup = await buildWithDriver(open('repaired'), drifted);
    // A port that is stale, address included, and an orphan: another driver process (its own
    // etcd client) changes both right after resync has read the datastore.
    const stale = drifted.ports.find((p) => p.id === 'port-40')!;
    expect(stale.fixedIps).not.toEqual(truth.ports[40]!.fixedIps);
    const orphan = drifted.ports.find((p) => p.id === 'orphan-3')!;
    const other = new CalyxDriver(open('repaired'), { requireLiveAgent: false });
    const store = beforeFirstTxn(setup.store, async () => {
      await other.updatePort({ ...stale, name: 'newer' });
      await other.updatePort({ ...orphan, name: 'kept' });
    });

    const report = await resyncDatastore(
      { client: new ResourceClient(store), ipam: new Ipam(store) },
      truth,
    );

    expect(report.skipped.map((s) => `${s.kind} ${s.id} ${s.action}`).sort()).toEqual([
      'Port orphan-3 delete',
      'Port port-40 update',
    ]);
    expect((await other.getPort('port-40'))?.name).toBe('newer');
    expect((await other.getPort('orphan-3'))?.name).toBe('kept');
    expect(report.ports.created).toHaveLength(10); // the 5% missing
    expect(report.ports.deleted).toHaveLength(10); // 10 orphans and one on the orphan network, less orphan-3
    expect(report.ports.rebound.length).toBeGreaterThan(0);
    expect(report.networks).toEqual({ created: [], updated: ['net-0'], deleted: ['net-orphan'] });
    expect(report.securityGroups).toEqual({
      created: ['sg-web'],
      updated: [],
      deleted: ['sg-orphan'],
    });
    expect(await checkIpam(setup.ipam)).toMatchObject({ ok: true });

    // The next resync reads the newer writes, so the orchestrator's truth wins again: the
    // datastore is then exactly what the driver writes creating the truth from scratch.
    const again = await resyncDatastore({ client: setup.client, ipam: setup.ipam }, truth);
    expect(again.ports).toMatchObject({ updated: ['port-40'], deleted: ['orphan-3'] });
    expect(await datastoreState(setup.store)).toEqual(await datastoreState(expected.store));
    expect(await checkIpam(setup.ipam)).toMatchObject({ ok: true });

    const revision = await setup.store.revision();
    const third = await resyncDatastore({ client: setup.client, ipam: setup.ipam }, truth);
    expect(third.counts).toMatchObject({ changed: 0, transactions: 0, unchanged: 200 + 4 + 4 + 2 });
    expect(await setup.store.revision()).toBe(revision);
  }, 120_000);
});

import { describe, expect, it } from 'vitest';
import { AbortedError } from '@calyx/core';
import { ResourceClient } from '@calyx/datastore';
import { createMemoryDatastore } from '@calyx/datastore-memory';
import { Ipam, checkIpam } from '@calyx/ipam';
import { keys, parseResource } from '@calyx/model';
import { beforeFirstTxn, buildWithDriver, datastoreState, registerHosts } from './resync.bench.js';
import {
  CalyxDriver,
  SnapshotInvalidError,
  resyncDatastore,
  type OrchestratorSnapshot,
  type ResyncReport,
} from './index.js';

type Ports = OrchestratorSnapshot['ports'];

let macs = 0;
const port = (
  id: string,
  networkId: string,
  ips: [string, string][],
  extra: Partial<Ports[number]> = {},
): Ports[number] => ({
  id,
  networkId,
  mac: `fa:16:3e:00:01:${(++macs % 256).toString(16).padStart(2, '0')}`,
  fixedIps: ips.map(([subnetId, ipAddress]) => ({ subnetId, ipAddress })),
  ...extra,
});

// The orchestrator's truth.
const truth = (): OrchestratorSnapshot => ({
  networks: [{ id: 'net-a', mtu: 9000 }, { id: 'net-b' }],
  securityGroups: [
    { id: 'sg-web', rules: [{ direction: 'ingress', protocol: 'tcp', portRangeMin: 443 }] },
    {
      id: 'sg-db',
      rules: [
        { direction: 'ingress', protocol: 'tcp', portRangeMin: 5432, remoteGroupId: 'sg-web' },
      ],
    },
  ],
  subnets: [
    { id: 'sub-a', networkId: 'net-a', cidr: '10.65.0.0/24', name: 'a' },
    { id: 'sub-a6', networkId: 'net-a', cidr: '2001:db8:65::/64' },
    { id: 'sub-b', networkId: 'net-b', cidr: '10.66.0.0/24' },
  ],
  ports: [
    port(
      'p1',
      'net-a',
      [
        ['sub-a', '10.65.0.11'],
        ['sub-a6', '2001:db8:65::11'],
      ],
      { host: 'compute-1', securityGroupIds: ['sg-web'], name: 'web-1', mac: 'fa:16:3e:00:00:01' },
    ),
    port('p2', 'net-a', [['sub-a', '10.65.0.12']], {
      host: 'compute-2',
      securityGroupIds: ['sg-web'],
      mac: 'fa:16:3e:00:00:02',
    }),
    port('p3', 'net-a', [['sub-a', '10.65.0.31']], { host: 'compute-1', mac: 'fa:16:3e:00:00:03' }),
    port('p4', 'net-b', [['sub-b', '10.66.0.14']], {
      securityGroupIds: ['sg-db'],
      mac: 'fa:16:3e:00:00:04',
    }),
    port('p5', 'net-a', [['sub-a', '10.65.0.15']], { host: 'compute-2', mac: 'fa:16:3e:00:00:05' }),
    port('p6', 'net-a', [['sub-a', '10.65.0.50']], { host: 'compute-1', mac: 'fa:16:3e:00:00:06' }),
    port('p7', 'net-a', [['sub-a', '10.65.0.41']], { host: 'compute-1', mac: 'fa:16:3e:00:00:07' }),
    port('p8', 'net-a', [['sub-a', '10.65.0.40']], { host: 'compute-2', mac: 'fa:16:3e:00:00:08' }),
  ],
});

// What the datastore holds instead: missing, stale and orphan records of every kind.
const stale = (): OrchestratorSnapshot => {
  const t = truth();
  const was = (id: string, change: Partial<Ports[number]> = {}): Ports[number] => ({
    ...t.ports.find((p) => p.id === id)!,
    ...change,
  });
  const at = (ip: string) => [{ subnetId: 'sub-a', ipAddress: ip }];
  return {
    networks: [{ id: 'net-a' }, { id: 'net-old' }], // net-a's MTU stale, net-b missing
    securityGroups: [
      { id: 'sg-web', rules: [{ direction: 'ingress', protocol: 'tcp', portRangeMin: 80 }] },
      { id: 'sg-old', rules: [] }, // sg-db missing
    ],
    subnets: [
      { ...t.subnets[0]!, name: 'old-name' }, // sub-a6 and sub-b missing
      { id: 'sub-old', networkId: 'net-old', cidr: '10.67.0.0/24' },
    ],
    ports: [
      was('p1', { name: 'web-old', fixedIps: at('10.65.0.11') }), // no IPv6 address yet
      was('p2', { host: 'compute-1' }), // rebinding to compute-2
      was('p3', { fixedIps: at('10.65.0.30') }), // another address
      was('p5'), // its location record goes (damage)
      was('p7', { fixedIps: at('10.65.0.40') }), // p7 and p8 swap addresses
      was('p8', { fixedIps: at('10.65.0.41') }),
      port('p-old', 'net-old', [['sub-old', '10.67.0.10']], { securityGroupIds: ['sg-old'] }),
      port('p-old2', 'net-a', [['sub-a', '10.65.0.50']], { host: 'compute-2' }), // p6's address
    ], // p4 and p6 missing
  };
};

/** The damage a crash or an operator leaves that the driver's API cannot produce. */
async function damage(driver: CalyxDriver): Promise<void> {
  const { store } = driver;
  await store.delete(keys.endpointLocation('p5'));
  const p5 = await store.get(keys.endpoint('compute-2', 'p5'));
  await store.put(keys.endpoint(null, 'p5'), p5!.value); // a second record of one port
  await store.delete(keys.ipPool('subnet-sub-a'));
  const subA = parseResource('Subnet', JSON.parse((await store.get(keys.subnet('sub-a')))!.value));
  // An allocation whose port was never written (a driver that died in between).
  await driver.ipam.assign({ subnet: subA, ip: '10.65.0.99', handleId: 'port:ghost', host: null });
}

const sorted = (r: { created: string[]; updated: string[]; deleted: string[] }) => ({
  created: [...r.created].sort(),
  updated: [...r.updated].sort(),
  deleted: [...r.deleted].sort(),
});

const target = (driver: CalyxDriver) => ({ client: driver.client, ipam: driver.ipam });

describe('resyncDatastore', () => {
  it('repairs missing, stale and orphan records of every kind exactly as the driver would have written them', async () => {
    const expected = await buildWithDriver(createMemoryDatastore(), truth());
    const driver = await buildWithDriver(createMemoryDatastore(), stale());
    await damage(driver);

    const report = await resyncDatastore(target(driver), truth());

    expect(await datastoreState(driver.store)).toEqual(await datastoreState(expected.store));
    expect((await checkIpam(driver.ipam)).ok).toBe(true);
    expect(sorted(report.networks)).toEqual({
      created: ['net-b'],
      updated: ['net-a'],
      deleted: ['net-old'],
    });
    expect(sorted(report.securityGroups)).toEqual({
      created: ['sg-db'],
      updated: ['sg-web'],
      deleted: ['sg-old'],
    });
    expect(sorted(report.subnets)).toEqual({
      created: ['sub-a6', 'sub-b'],
      updated: ['sub-a'],
      deleted: ['sub-old'],
    });
    expect(sorted(report.ipPools)).toEqual({
      created: ['subnet-sub-a', 'subnet-sub-a6', 'subnet-sub-b'],
      updated: [],
      deleted: ['subnet-sub-old'],
    });
    expect(sorted(report.ports)).toEqual({
      created: ['p4', 'p6'],
      updated: ['p1', 'p2', 'p3', 'p5', 'p7', 'p8'],
      deleted: ['p-old', 'p-old2'],
    });
    expect(report.ports.rebound).toEqual(['p2']);
    expect(report.skipped).toEqual([]);
    expect([...report.ipam.released].sort()).toEqual([
      '10.65.0.30',
      '10.65.0.40',
      '10.65.0.41',
      '10.65.0.50',
      '10.65.0.99',
      '10.67.0.10',
    ]);
    expect([...report.ipam.assigned].sort()).toEqual([
      '10.65.0.31',
      '10.65.0.40',
      '10.65.0.41',
      '10.65.0.50',
      '10.66.0.14',
      '2001:db8:65::11',
    ]);
    expect(report.ipam.unrepairable).toEqual([]);
    expect(report.counts).toMatchObject({
      snapshot: { networks: 2, subnets: 3, securityGroups: 2, ports: 8 },
      datastore: { networks: 2, subnets: 2, securityGroups: 2, ports: 8 },
      unchanged: 0,
      skipped: 0,
    });
  });

  it('changes nothing the second time (no write at all)', async () => {
    const driver = await buildWithDriver(createMemoryDatastore(), stale());
    await damage(driver);
    await resyncDatastore(target(driver), truth());
    const before = await driver.store.revision();
    const again = await resyncDatastore(target(driver), truth());
    expect(await driver.store.revision()).toBe(before);
    expect(again.counts).toMatchObject({ changed: 0, skipped: 0, transactions: 0, unchanged: 15 });
    expect(again.ipam).toMatchObject({ released: [], assigned: [], unrepairable: [] });
  });

  it('over a datastore already in sync writes nothing', async () => {
    const driver = await buildWithDriver(createMemoryDatastore(), truth());
    const before = await driver.store.revision();
    const r = await resyncDatastore(target(driver), truth());
    expect(await driver.store.revision()).toBe(before);
    expect(r.counts.changed).toBe(0);
  });

  it('fills an empty datastore', async () => {
    const expected = await buildWithDriver(createMemoryDatastore(), truth());
    const driver = new CalyxDriver(createMemoryDatastore());
    await registerHosts(driver, truth());
    const r = await resyncDatastore(target(driver), truth(), { maxOpsPerTxn: 8 });
    expect(await datastoreState(driver.store)).toEqual(await datastoreState(expected.store));
    expect((await checkIpam(driver.ipam)).ok).toBe(true);
    expect(r.counts.changed).toBe(2 + 2 + 3 + 8);
    expect(r.counts.transactions).toBeGreaterThan(8); // small transactions: many of them
  });

  it('a dry run reports the same changes and writes nothing', async () => {
    const driver = await buildWithDriver(createMemoryDatastore(), stale());
    await damage(driver);
    const before = await driver.store.revision();
    const plan = await resyncDatastore(target(driver), truth(), { dryRun: true });
    expect(await driver.store.revision()).toBe(before);
    const done = await resyncDatastore(target(driver), truth());
    const sections = (r: ResyncReport) => ({
      networks: sorted(r.networks),
      subnets: sorted(r.subnets),
      securityGroups: sorted(r.securityGroups),
      ports: sorted(r.ports),
      ipPools: sorted(r.ipPools),
      released: [...r.ipam.released].sort(),
      assigned: [...r.ipam.assigned].sort(),
    });
    expect(sections(plan)).toEqual(sections(done));
  });

  it('rejects an invalid snapshot naming every problem, and writes nothing', async () => {
    const driver = await buildWithDriver(createMemoryDatastore(), stale());
    const before = await driver.store.revision();
    const bad = truth();
    bad.subnets.push({ id: 'sub-c', networkId: 'net-zz', cidr: '10.65.0.128/25' });
    bad.ports.push(
      port('p9', 'net-a', [['sub-a', '10.65.0.11']], { securityGroupIds: ['sg-none'] }),
      port('p1', 'net-a', [['sub-a', '10.99.0.1']]),
      { id: 'p10', networkId: 'net-a', mac: 'not-a-mac' },
    );
    const err = await resyncDatastore(target(driver), bad).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SnapshotInvalidError);
    const issues = (err as SnapshotInvalidError).issues.map(
      (i) => `${i.kind} ${i.id} ${i.field}: ${i.problem}`,
    );
    expect(issues).toEqual(
      expect.arrayContaining([
        'Subnet sub-c networkId: is not a network of the snapshot',
        'Subnet sub-c cidr: overlaps subnet sub-a (10.65.0.0/24)',
        "Port p9 fixedIps[0].ipAddress: is also port p1's",
        'Port p9 securityGroupIds[0]: is not a security group of the snapshot',
        'Port p1 id: is listed twice (ports[9])',
        expect.stringMatching(/^Port p10 mac: /),
      ]),
    );
    expect((err as SnapshotInvalidError).code).toBe('SNAPSHOT_INVALID');
    expect(await driver.store.revision()).toBe(before);
    // A snapshot that lacks a list is refused too: resync would otherwise delete every port.
    const partial = { ...truth(), ports: undefined } as unknown as OrchestratorSnapshot;
    await expect(resyncDatastore(target(driver), partial)).rejects.toThrow(
      /Snapshot: ports undefined must be an array|ports \(missing\) must be an array/,
    );
    expect(await driver.store.revision()).toBe(before);
  });

  it('never overwrites a write that lands between its read and its writes', async () => {
    const inner = createMemoryDatastore();
    const setup = await buildWithDriver(inner, stale());
    await damage(setup);
    const other = new CalyxDriver(inner, { requireLiveAgent: false }); // another driver process, writing concurrently
    const store = beforeFirstTxn(inner, async () => {
      await other.updateNetwork({ id: 'net-a', mtu: 1400 });
      await other.updatePort({ ...stale().ports[0]!, name: 'newer' }); // p1: stale for resync
      await other.createNetwork({ id: 'net-b' });
      await other.createSubnet({ id: 'sub-b', networkId: 'net-b', cidr: '10.66.0.0/24' });
      await other.createPort(
        port('p4', 'net-b', [['sub-b', '10.66.0.77']], { mac: 'fa:16:3e:00:00:44' }),
      );
      await other.updatePort({ ...stale().ports[6]!, name: 'kept' }); // p-old: an orphan for resync
    });
    const client = new ResourceClient(store);
    const ipam = new Ipam(store);
    const report = await resyncDatastore({ client, ipam }, truth());

    const skipped = report.skipped.map((s) => `${s.kind} ${s.id} ${s.action}`).sort();
    expect(skipped).toEqual([
      'Network net-a update',
      'Network net-b create',
      'Network net-old delete', // in use by p-old, which was kept
      'Port p-old delete',
      'Port p1 update',
      'Port p4 create',
      'SecurityGroup sg-old delete',
      'Subnet sub-b create',
      'Subnet sub-old delete',
    ]);
    expect(report.skipped.find((s) => s.id === 'p1')?.reason).toMatch(/changed concurrently/);
    expect(report.skipped.find((s) => s.id === 'p4')?.reason).toMatch(/created concurrently/);
    expect(report.skipped.find((s) => s.id === 'sub-old')?.reason).toBe('in use by port p-old');
    // The concurrent writes stand.
    expect((await other.getNetwork('net-a'))?.mtu).toBe(1400);
    expect((await other.getPort('p1'))?.name).toBe('newer');
    expect((await other.getPort('p4'))?.fixedIps).toEqual([
      { subnetId: 'sub-b', ipAddress: '10.66.0.77' },
    ]);
    expect((await other.getPort('p-old'))?.name).toBe('kept');
    // Everything else was repaired, and IPAM follows what is stored (p4's address from the
    // snapshot, assigned before its write lost, was given back).
    expect((await other.getPort('p2'))?.host).toBe('compute-2');
    expect((await other.getPort('p6'))?.fixedIps[0]?.ipAddress).toBe('10.65.0.50');
    expect(await other.getSecurityGroup('sg-db')).toBeDefined();
    expect(report.ipam.released).toContain('10.66.0.14');
    expect(await checkIpam(ipam)).toMatchObject({ ok: true });
  });

  it('does not create a subnet that overlaps one created concurrently, nor its ports', async () => {
    const inner = createMemoryDatastore();
    await buildWithDriver(inner, stale());
    const other = new CalyxDriver(inner, { requireLiveAgent: false });
    const store = beforeFirstTxn(inner, async () => {
      await other.createSubnet({ id: 'sub-x', networkId: 'net-a', cidr: '10.66.0.0/25' });
    });
    const report = await resyncDatastore(
      { client: new ResourceClient(store), ipam: new Ipam(store) },
      truth(),
    );
    const reasons = Object.fromEntries(report.skipped.map((s) => [`${s.kind} ${s.id}`, s.reason]));
    expect(reasons['Subnet sub-b']).toMatch(/overlaps subnet sub-x \(10\.66\.0\.0\/25\)/);
    expect(reasons['Port p4']).toBe('subnet sub-b was not created');
    expect(await other.getSubnet('sub-b')).toBeUndefined();
    expect(await other.getSubnet('sub-a6')).toBeDefined(); // created in the same transaction run
    expect(await other.getPort('p4')).toBeUndefined();
    expect(await checkIpam(other.ipam)).toMatchObject({ ok: true });
  });

  it('reports progress, unregistered hosts, and stops when aborted', async () => {
    const driver = new CalyxDriver(createMemoryDatastore());
    const seen: [number, number][] = [];
    const r = await resyncDatastore(target(driver), truth(), {
      onProgress: (done, total) => seen.push([done, total]),
    });
    expect(seen.at(-1)).toEqual([seen.at(-1)![1], seen.at(-1)![1]]);
    expect(r.unregisteredHosts).toEqual(['compute-1', 'compute-2']);

    const fresh = new CalyxDriver(createMemoryDatastore());
    const ac = new AbortController();
    ac.abort();
    await expect(
      resyncDatastore(target(fresh), truth(), { signal: ac.signal }),
    ).rejects.toBeInstanceOf(AbortedError);
    expect(await fresh.store.revision()).toBe(await createMemoryDatastore().revision());
  });
});

import { describe, expect, it } from 'vitest';
import { createMemoryDatastore, type MemoryDatastore } from '@calyx/datastore-memory';
import { ResourceClient } from '@calyx/datastore';
import { interceptDatastore } from '@calyx/datastore/testing';
import { keys, parseResource, type Subnet } from '@calyx/model';
import { cidrContains, parseCidr, parseIP } from '@calyx/netaddr';
import {
  AddressAllocatedError,
  AddressNotAssignableError,
  Ipam,
  IpamExhaustedError,
  allocateConcurrently,
  releaseConcurrently,
  checkIpam,
  portHandle,
  repairIpam,
  subnetPool,
} from './index.js';

async function setup(
  cidr: string,
  extra: object = {},
): Promise<{ store: MemoryDatastore; subnet: Subnet }> {
  const store = createMemoryDatastore();
  const client = new ResourceClient(store);
  const subnet = parseResource('Subnet', { id: 's1', networkId: 'n1', cidr, ...extra });
  await client
    .txn()
    .create('Network', { id: 'n1' })
    .create('Subnet', subnet)
    .create('IpPool', subnetPool(subnet))
    .commit();
  return { store, subnet };
}

const inPools = (s: Subnet, ip: string) =>
  s.allocationPools.some(
    (p) => parseIP(p.start).value <= parseIP(ip).value && parseIP(ip).value <= parseIP(p.end).value,
  );

describe('Ipam', () => {
  it('hands out addresses from the host’s own block, never network, broadcast or gateway', async () => {
    const { store, subnet } = await setup('10.65.0.0/24');
    const ipam = new Ipam(store);
    const ips: string[] = [];
    for (let i = 0; i < 62; i++)
      ips.push((await ipam.autoAssign({ subnet, handleId: `h${i}`, host: 'compute-1' })).ip);
    expect(new Set(ips).size).toBe(62);
    expect(ips).not.toContain('10.65.0.0');
    expect(ips).not.toContain('10.65.0.1');
    expect(ips.every((ip) => cidrContains(parseCidr('10.65.0.0/26'), parseIP(ip)))).toBe(true); // one block: aggregated
    const next = await ipam.autoAssign({ subnet, handleId: 'h62', host: 'compute-1' });
    expect(next.block).toBe('10.65.0.64/26');
    const other = await ipam.autoAssign({ subnet, handleId: 'x', host: 'compute-2' });
    expect(other.block).toBe('10.65.0.128/26');
    expect(
      (await store.list('/calyx/v1/ipam/affinity/compute-1/')).items.map((kv) => kv.key),
    ).toEqual([
      '/calyx/v1/ipam/affinity/compute-1/10.65.0.0-26',
      '/calyx/v1/ipam/affinity/compute-1/10.65.0.64-26',
    ]);
    await store.close();
  });

  it('respects allocation pools, borrows when the pool has no free block, then reports exhaustion', async () => {
    const { store, subnet } = await setup('10.66.0.0/27', {
      allocationPools: [{ start: '10.66.0.10', end: '10.66.0.14' }],
    });
    const ipam = new Ipam(store);
    const a = await ipam.autoAssign({ subnet, handleId: 'a', host: 'compute-1' });
    expect(a.ip).toBe('10.66.0.10');
    expect(a.block).toBe('10.66.0.0/27'); // a /27 subnet is its own block
    const b = await ipam.autoAssign({ subnet, handleId: 'b', host: 'compute-2' }); // borrowed
    expect(b.ip).toBe('10.66.0.11');
    for (const h of ['c', 'd', 'e'])
      expect(
        inPools(subnet, (await ipam.autoAssign({ subnet, handleId: h, host: 'compute-2' })).ip),
      ).toBe(true);
    await expect(ipam.autoAssign({ subnet, handleId: 'f', host: 'compute-2' })).rejects.toThrow(
      IpamExhaustedError,
    );
    await store.close();
  });

  it('assigns fixed addresses, refuses taken and reserved ones, allows addresses outside the pools', async () => {
    const { store, subnet } = await setup('10.65.0.0/24', {
      allocationPools: [{ start: '10.65.0.100', end: '10.65.0.200' }],
    });
    const ipam = new Ipam(store);
    expect(
      (await ipam.assign({ subnet, ip: '10.65.0.7', handleId: 'p1', host: 'compute-1' })).ip,
    ).toBe('10.65.0.7');
    expect(
      (await ipam.assign({ subnet, ip: '10.65.0.7', handleId: 'p1', host: 'compute-1' })).ip,
    ).toBe('10.65.0.7'); // idempotent
    await expect(
      ipam.assign({ subnet, ip: '10.65.0.7', handleId: 'p2', host: null }),
    ).rejects.toThrow(AddressAllocatedError);
    await expect(
      ipam.assign({ subnet, ip: '10.65.0.1', handleId: 'p2', host: null }),
    ).rejects.toThrow(AddressNotAssignableError);
    await expect(
      ipam.assign({ subnet, ip: '10.65.0.255', handleId: 'p2', host: null }),
    ).rejects.toThrow(/broadcast/);
    await expect(
      ipam.assign({ subnet, ip: '10.66.0.5', handleId: 'p2', host: null }),
    ).rejects.toThrow(/outside subnet/);
    // Auto-assignment in the same block skips the fixed address and everything outside the pools.
    const auto = await ipam.autoAssign({ subnet, handleId: 'p3', host: 'compute-1' });
    expect(auto.ip).toBe('10.65.0.100');
    expect(auto.block).toBe('10.65.0.64/26');
    await store.close();
  });

  it('releases exactly: by handle, and by address only while the allocation is the same one', async () => {
    const { store, subnet } = await setup('10.65.0.0/24');
    const ipam = new Ipam(store);
    const a = await ipam.autoAssign({ subnet, handleId: 'a', host: 'h' });
    const b = await ipam.autoAssign({ subnet, handleId: 'b', host: 'h' });
    expect(await ipam.release([{ ip: a.ip, handleId: 'someone-else' }])).toEqual([]);
    expect(await ipam.release([{ ip: a.ip, sequence: a.sequence }])).toEqual([a.ip]);
    const reused = await ipam.assign({ subnet, ip: a.ip, handleId: 'c', host: 'h' });
    expect(reused.sequence).not.toBe(a.sequence);
    expect(await ipam.release([{ ip: a.ip, sequence: a.sequence }])).toEqual([]); // stale: reused meanwhile
    expect(await ipam.holderOf(a.ip)).toMatchObject({ handleId: 'c' });
    // By address and its own handle: found through the handle's blocks, in whichever block.
    const far = await ipam.assign({ subnet, ip: '10.65.0.200', handleId: 'b', host: 'h' });
    expect(far.block).not.toBe(b.block);
    expect(await ipam.release([{ ip: far.ip, handleId: 'b' }])).toEqual([far.ip]);
    expect(await ipam.release([{ ip: far.ip, handleId: 'b' }])).toEqual([]);
    expect(await ipam.release([{ ip: b.ip, handleId: 'nobody' }])).toEqual([]);
    expect(await ipam.releaseByHandle('b')).toEqual([b.ip]);
    expect(await ipam.releaseByHandle('c')).toEqual([a.ip]);
    // The block is empty: gone, with its affinity and handles.
    expect((await store.list('/calyx/v1/ipam/')).items).toEqual([]);
    await store.close();
  });

  it('never hands out one address twice: 4 allocators (4 hosts), 10,000 addresses, concurrently', async () => {
    const { store, subnet } = await setup('10.80.0.0/16');
    const allocators = Array.from({ length: 4 }, (_, i) => ({
      host: `compute-${i + 1}`,
      ipam: new Ipam(store.connect()),
    }));
    const per = 2500;
    const results = await allocateConcurrently(allocators, subnet, per);
    const all = results.flat();
    expect(all.length).toBe(10_000);
    expect(new Set(all).size).toBe(10_000);
    expect(all.every((ip) => inPools(subnet, ip))).toBe(true);
    const report = await checkIpam(allocators[0]!.ipam);
    expect(report.allocations).toBe(10_000);
    expect(report.orphanHandles).toEqual([]);
    expect(report.handleMismatches).toEqual([]);
    await releaseConcurrently(allocators, per);
    const after = await checkIpam(allocators[0]!.ipam);
    expect(after).toMatchObject({ blocks: 0, allocations: 0, ok: true });
    for (const a of allocators) await a.ipam.store.close();
    await store.close();
  }, 120_000);

  it('check finds leaks left by allocators killed mid-way, and repair cleans up', async () => {
    const { store, subnet } = await setup('10.81.0.0/20');
    const client = new ResourceClient(store);
    const ipam = new Ipam(store);
    // Ports whose allocation happened but whose endpoint was never written (the process died in between).
    const orphans = [];
    for (let i = 0; i < 20; i++)
      orphans.push(
        await ipam.autoAssign({ subnet, handleId: portHandle(`dead-${i}`), host: 'compute-1' }),
      );
    // A port that exists, with one address allocated and one never allocated.
    const live = await ipam.autoAssign({ subnet, handleId: portHandle('live'), host: 'compute-1' });
    await client.create('Endpoint', {
      id: 'live',
      host: 'compute-1',
      networkId: 'n1',
      mac: 'fa:16:3e:00:00:01',
      fixedIps: [
        { subnetId: 's1', ipAddress: live.ip },
        { subnetId: 's1', ipAddress: '10.81.5.5' },
      ],
    });
    // A handle record left behind with nothing allocated.
    await store.put(
      '/calyx/v1/ipam/handle/port:ghost',
      JSON.stringify({ handleId: 'port:ghost', blocks: { '10.81.0.0/26': 1 } }),
    );
    const report = await checkIpam(ipam);
    expect(report.ok).toBe(false);
    expect(report.leaked.map((l) => l.ip).sort()).toEqual(orphans.map((o) => o.ip).sort());
    expect(report.missing).toEqual([
      { ip: '10.81.5.5', endpointId: 'live', subnetId: 's1', host: 'compute-1', heldBy: null },
    ]);
    expect(report.orphanHandles).toEqual(['port:ghost']);
    const repaired = await repairIpam(ipam, report);
    expect(repaired.released.length).toBe(20);
    expect(repaired.assigned).toEqual(['10.81.5.5']);
    expect(repaired.unrepairable).toEqual([]);
    expect((await checkIpam(ipam)).ok).toBe(true);
    await store.close();
  });

  it('survives allocators aborted at random points: no duplicates, and repair leaves a clean state', async () => {
    const { store, subnet } = await setup('10.82.0.0/20');
    const client = new ResourceClient(store);
    const seen = new Map<string, string>();
    let rnd = 42;
    const random = () => (rnd = (rnd * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    await Promise.all(
      Array.from({ length: 4 }, async (_, w) => {
        const ipam = new Ipam(store.connect());
        for (let i = 0; i < 150; i++) {
          const id = `w${w}-${i}`;
          const a = await ipam.autoAssign({
            subnet,
            handleId: portHandle(id),
            host: `compute-${w}`,
          });
          if (seen.has(a.ip)) throw new Error(`duplicate ${a.ip}`);
          seen.set(a.ip, id);
          // "Killed" after allocating, before the port was written, about one time in five.
          if (random() < 0.2) continue;
          await client.create('Endpoint', {
            id,
            host: `compute-${w}`,
            networkId: 'n1',
            mac: 'fa:16:3e:00:00:02',
            fixedIps: [{ subnetId: 's1', ipAddress: a.ip }],
          });
        }
      }),
    );
    const before = await checkIpam(new Ipam(store));
    expect(before.leaked.length).toBeGreaterThan(0);
    expect(before.missing).toEqual([]);
    await repairIpam(new Ipam(store), before);
    const after = await checkIpam(new Ipam(store));
    expect(after.ok).toBe(true);
    expect(after.allocations).toBe(600 - before.leaked.length);
    await store.close();
  });
});

describe('Ipam.assignMany', () => {
  it('gives what one-by-one assign would, in a transaction per block chunk instead of one per address', async () => {
    const { store, subnet } = await setup('10.80.0.0/22');
    const ipam = new Ipam(store);
    // An address already held, and a port (p-old) whose handle already exists.
    await ipam.assign({ subnet, ip: '10.80.0.9', handleId: portHandle('p-old'), host: 'h1' });
    const reqs = [
      ...Array.from({ length: 300 }, (_, i) => ({
        subnet,
        ip: `10.80.${(300 + i) >> 8}.${(300 + i) & 255}`,
        handleId: portHandle(`p${i}`),
        host: i % 2 ? 'h1' : 'h2',
      })),
      { subnet, ip: '10.80.0.9', handleId: portHandle('p-other'), host: 'h1' }, // taken
      { subnet, ip: '10.80.0.9', handleId: portHandle('p-old'), host: 'h1' }, // already its own
      { subnet, ip: '10.80.0.10', handleId: portHandle('p-old'), host: 'h1' }, // existing handle
      { subnet, ip: '10.80.0.0', handleId: portHandle('p-net'), host: 'h1' }, // network address
      { subnet, ip: '10.99.0.1', handleId: portHandle('p-far'), host: 'h1' }, // outside
      { subnet, ip: '10.80.0.20', handleId: portHandle('p-two'), host: 'h1' }, // two of one port
      { subnet, ip: '10.80.0.21', handleId: portHandle('p-two'), host: 'h1' },
    ];
    const unique = new Set(reqs.slice(0, 300).map((r) => r.ip));
    expect(unique.size).toBe(300);
    let txns = 0;
    const counted = interceptDatastore(store, (inner) => ({
      txn: (req) => {
        txns++;
        return inner.txn(req);
      },
    }));
    const out = await new Ipam(counted).assignMany(reqs);
    const ok = out.slice(0, 300);
    expect(ok.every((r) => !(r instanceof Error))).toBe(true);
    expect(ok.map((r) => (r as { ip: string }).ip)).toEqual(reqs.slice(0, 300).map((r) => r.ip));
    expect(out[300]).toBeInstanceOf(AddressAllocatedError);
    expect(out[301]).toMatchObject({ ip: '10.80.0.9', handleId: portHandle('p-old') });
    expect(out[302]).toMatchObject({ ip: '10.80.0.10', handleId: portHandle('p-old') });
    expect(out[303]).toBeInstanceOf(AddressNotAssignableError);
    expect(out[304]).toBeInstanceOf(AddressNotAssignableError);
    expect(out[305]).toMatchObject({ ip: '10.80.0.20' });
    expect(out[306]).toMatchObject({ ip: '10.80.0.21' });
    // 300 new handles in chunks of ≤ 30 per block, plus the few that go one by one.
    expect(txns).toBeLessThan(40);
    for (const r of reqs.slice(0, 300))
      expect(await ipam.holderOf(r.ip)).toMatchObject({ handleId: r.handleId });
    expect(await ipam.holderOf('10.80.0.21')).toMatchObject({ handleId: portHandle('p-two') });
    // Handle records count what each handle holds per block (the check's view of them).
    const handles = new Map(
      (await store.list('/calyx/v1/ipam/handle/')).items.map((kv) => [
        kv.key.split('/').pop(),
        JSON.parse(kv.value) as { blocks: Record<string, number> },
      ]),
    );
    expect(handles.get('port:p-two')?.blocks).toEqual({ '10.80.0.0/26': 2 });
    expect(handles.get('port:p-old')?.blocks).toEqual({ '10.80.0.0/26': 2 });
    expect(handles.get('port:p0')?.blocks).toEqual({ '10.80.1.0/26': 1 });
    const report = await checkIpam(ipam);
    // No endpoints exist, so every allocation is a leak to the check — and nothing else is off.
    expect(report.leaked.length).toBe(report.allocations);
    expect(report.missing).toEqual([]);
    expect(report.orphanHandles).toEqual([]);
    expect(report.handleMismatches).toEqual([]);
  });
});

describe('IPAM with other processes changing blocks behind its cache', () => {
  it('never allocates a host’s address in a block another host claimed meanwhile', async () => {
    const { store, subnet } = await setup('10.0.0.0/24');
    const p1 = new Ipam(store);
    const p2 = new Ipam(store);
    const a1 = await p1.autoAssign({ subnet, handleId: portHandle('a1'), host: 'hA' });
    // Another process empties hA's block (it is deleted) and hB claims that range.
    await p2.releaseByHandle(portHandle('a1'));
    const b1 = await p2.autoAssign({ subnet, handleId: portHandle('b1'), host: 'hB' });
    expect(b1.block).toBe(a1.block);
    for (let i = 2; i < 5; i++) {
      const a = await p1.autoAssign({ subnet, handleId: portHandle(`a${i}`), host: 'hA' });
      const block = JSON.parse((await store.get(keys.ipamBlock(a.block)))!.value) as {
        affinity: string;
      };
      expect(block.affinity).toBe('hA');
    }
  });

  it('uses room another process freed in a block it had cached as full', async () => {
    const { store, subnet } = await setup('10.0.0.0/24');
    const p1 = new Ipam(store);
    const p2 = new Ipam(store);
    const got = [];
    for (let i = 0; i < 62; i++)
      got.push(await p1.autoAssign({ subnet, handleId: portHandle(`a${i}`), host: 'hA' }));
    expect(new Set(got.map((g) => g.block))).toEqual(new Set(['10.0.0.0/26']));
    await p2.releaseByHandle(portHandle('a5'));
    const next = await p1.autoAssign({ subnet, handleId: portHandle('new'), host: 'hA' });
    expect(next).toMatchObject({ ip: got[5]!.ip, block: '10.0.0.0/26' });
  });

  it('repair releases a leak whose handle record is gone', async () => {
    const { store, subnet } = await setup('10.0.0.0/24');
    const ipam = new Ipam(store);
    await ipam.autoAssign({ subnet, handleId: portHandle('p1'), host: 'h1' });
    await store.delete(keys.ipamHandle(portHandle('p1')));
    expect((await checkIpam(ipam)).leaked).toHaveLength(1);
    expect((await repairIpam(ipam)).released).toHaveLength(1);
    expect((await checkIpam(ipam)).ok).toBe(true);
  });
});

import { beforeEach, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ResourceClient } from '@calyx/datastore';
import { createMemoryDatastore, type MemoryDatastore } from '@calyx/datastore-memory';
import { Ipam, portHandle, subnetPool, type IpamCheckReport } from '@calyx/ipam';
import { keys, parseResource } from '@calyx/model';
import { EXIT } from '../exit-codes.js';
import { calyxctl, seed, snapshot, subnet } from '../harness.js';

describe('calyxctl ipam', () => {
  let store: MemoryDatastore;
  let ipam: Ipam;
  const run = (argv: string[], extra: Parameters<typeof calyxctl>[1] = {}) =>
    calyxctl(argv, { datastore: store, ...extra });
  const sub = parseResource('Subnet', subnet);

  beforeEach(async () => {
    store = createMemoryDatastore();
    await seed(store);
    await new ResourceClient(store).create('IpPool', subnetPool(sub));
    ipam = new Ipam(store);
    // ep2's address is allocated properly; ep1's is not (missing); a deleted port's leaked;
    // a handle record holds nothing.
    await ipam.assign({
      subnet: sub,
      ip: '10.65.0.20',
      handleId: portHandle('ep2'),
      host: 'compute-2',
    });
    await ipam.assign({
      subnet: sub,
      ip: '10.65.0.99',
      handleId: portHandle('gone'),
      host: 'compute-1',
    });
    await store.put(
      keys.ipamHandle('port:orphan'),
      JSON.stringify({ handleId: 'port:orphan', blocks: { '10.65.0.0/26': 1 } }),
    );
  });

  it('show: pools and blocks with their use, in every format', async () => {
    const t = await run(['ipam', 'show']);
    expect(t.code).toBe(EXIT.OK);
    const [pools, blocks] = t.stdout.split('\n\n');
    expect(pools!.split('\n')[0]!.split(/\s+/)).toEqual([
      'POOL',
      'CIDR',
      'SUBNET',
      'SIZE',
      'BLOCKS',
      'USED',
      'FREE',
    ]);
    expect(pools).toMatch(/subnet-sub-a\s+10\.65\.0\.0\/24\s+sub-a\s+256\s+2\s+2\s+/);
    expect(
      blocks!
        .trim()
        .split('\n')
        .map((l) => l.split(/\s+/).slice(0, 5)),
    ).toEqual([
      ['BLOCK', 'POOL', 'AFFINITY', 'SIZE', 'USED'],
      ['10.65.0.0/26', 'subnet-sub-a', 'compute-2', '64', '1'],
      ['10.65.0.64/26', 'subnet-sub-a', 'compute-1', '64', '1'],
    ]);
    const json = JSON.parse((await run(['ipam', 'show', '-o', 'json'])).stdout) as {
      pools: { name: string; used: number }[];
      blocks: { cidr: string; handles: Record<string, number> }[];
    };
    expect(json.pools.find((p) => p.name === 'subnet-sub-a')?.used).toBe(2);
    expect(json.blocks[0]!.handles).toEqual({ 'port:ep2': 1 });
    expect(parse((await run(['ipam', 'show', '-o', 'yaml'])).stdout)).toEqual(json);
  });

  it('show --ip: who holds an address', async () => {
    expect((await run(['ipam', 'show', '--ip', '10.65.0.20'])).stdout).toBe(
      '10.65.0.20: allocated to port:ep2 (block 10.65.0.0/26)\n',
    );
    expect((await run(['ipam', 'show', '--ip', '10.65.0.21'])).stdout).toBe(
      '10.65.0.21: free (block 10.65.0.0/26)\n',
    );
    expect(
      JSON.parse((await run(['ipam', 'show', '--ip', '192.0.2.1', '-o', 'json'])).stdout),
    ).toEqual({
      ip: '192.0.2.1',
      block: null,
      allocated: false,
      handleId: null,
    });
    expect((await run(['ipam', 'show', '--ip', 'nope'])).code).toBe(EXIT.USAGE);
  });

  it('check: lists each problem and exits 1; JSON is the report', async () => {
    const r = await run(['ipam', 'check']);
    expect(r.code).toBe(EXIT.FAILURE);
    expect(r.stdout.trim().split('\n')).toEqual([
      'leaked    10.65.0.99 held by port:gone in 10.65.0.64/26: its port is gone',
      'missing   10.65.0.10 of port ep1 (subnet sub-a): not allocated',
      'orphan    handle port:orphan holds nothing',
      '2 blocks, 2 allocations: 3 problems',
    ]);
    const report = JSON.parse(
      (await run(['ipam', 'check', '-o', 'json'])).stdout,
    ) as IpamCheckReport;
    expect(report).toMatchObject({ ok: false, blocks: 2, allocations: 2 });
    expect(report.leaked).toHaveLength(1);
  });

  it('repair --dry-run only checks', async () => {
    const before = await snapshot(store);
    const r = await run(['ipam', 'repair', '--dry-run']);
    expect(r.code).toBe(EXIT.FAILURE);
    expect(r.stdout).toMatch(/3 problems\ndry run: nothing repaired\n$/);
    expect(await snapshot(store)).toEqual(before);
  });

  it('repair: fixes everything (progress bar on a TTY), then check passes', async () => {
    const r = await run(['ipam', 'repair'], { tty: true });
    expect(r.code).toBe(EXIT.OK);
    expect(r.stdout.trim().split('\n')).toEqual([
      'released  10.65.0.99',
      'assigned  10.65.0.10',
      'deleted   handle port:orphan',
      'released 1, assigned 1, handles deleted 1, rewritten 0, unrepairable 0',
      'after repair: 1 blocks, 2 allocations: consistent',
    ]);
    expect(r.stderr).toMatch(/repairing IPAM \[#+\] 2\/2/);
    expect((await run(['ipam', 'check'])).code).toBe(EXIT.OK);
    const again = await run(['ipam', 'repair', '-o', 'json']);
    expect(again.code).toBe(EXIT.OK);
    expect(JSON.parse(again.stdout)).toMatchObject({ check: { ok: true }, repair: null });
  });

  it('repair exits 1 when an address cannot be repaired', async () => {
    // ep1 wants 10.65.0.10, which something other than a port holds (not IPAM's to judge).
    await ipam.assign({ subnet: sub, ip: '10.65.0.10', handleId: 'router:r1', host: 'compute-2' });
    const r = await run(['ipam', 'repair', '-o', 'json']);
    expect(r.code).toBe(EXIT.FAILURE);
    const out = JSON.parse(r.stdout) as {
      repair: { unrepairable: string[] };
      after: { ok: boolean };
    };
    expect(out.repair.unrepairable).toEqual(['10.65.0.10 of port ep1 is held by router:r1']);
    expect(out.after.ok).toBe(false);
  });
});

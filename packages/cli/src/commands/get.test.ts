import { beforeEach, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { createMemoryDatastore, type MemoryDatastore } from '@calyx/datastore-memory';
import { keys } from '@calyx/model';
import { EXIT } from '../exit-codes.js';
import { calyxctl, putEndpointStatus, seed } from '../harness.js';

/** A table as rows of cells (split on runs of blanks; our tables' cells have none but the last). */
const rows = (table: string) =>
  table
    .trim()
    .split('\n')
    .map((l) => l.split(/\s{2,}/));

describe('calyxctl get', () => {
  let store: MemoryDatastore;
  const run = (...argv: string[]) => calyxctl(argv, { datastore: store });

  beforeEach(async () => {
    store = createMemoryDatastore();
    await seed(store);
  });

  it('lists a kind as a table (aliases and plurals accepted)', async () => {
    for (const word of ['endpoint', 'Endpoints', 'ep', 'ports']) {
      const r = await run('get', word);
      expect(r.code).toBe(EXIT.OK);
      expect(rows(r.stdout)).toEqual([
        ['ID', 'HOST', 'NETWORK', 'INTERFACE', 'MAC', 'ADDRESSES', 'GROUPS', 'ADMIN'],
        ['ep1', 'compute-1', 'net-a', 'tapep1', 'fa:16:3e:00:00:01', '10.65.0.10', 'sg-web', 'up'],
        ['ep2', 'compute-2', 'net-a', 'tapep2', 'fa:16:3e:00:00:01', '10.65.0.20', 'sg-web', 'up'],
      ]);
    }
  });

  it('shows named resources in JSON (one object for one id) and YAML, with their kind', async () => {
    const one = await run('get', 'subnet', 'sub-a', '-o', 'json');
    expect(JSON.parse(one.stdout)).toEqual({
      kind: 'Subnet',
      id: 'sub-a',
      networkId: 'net-a',
      name: '',
      cidr: '10.65.0.0/24',
      dnsServers: [],
      hostRoutes: [],
      enableDhcp: true,
      ipVersion: 4,
      gatewayIp: '10.65.0.1',
      allocationPools: [{ start: '10.65.0.2', end: '10.65.0.254' }],
    });
    const two = await run('get', 'host', 'compute-1', 'compute-2', '-o', 'json');
    expect((JSON.parse(two.stdout) as { name: string }[]).map((h) => h.name)).toEqual([
      'compute-1',
      'compute-2',
    ]);
    const yaml = await run('get', 'hosts', '-o', 'yaml');
    expect(parseAllDocuments(yaml.stdout).map((d) => d.toJS() as unknown)).toEqual([
      {
        kind: 'Host',
        name: 'compute-1',
        ipv4Address: '172.31.0.1',
        ipv6Address: null,
        asNumber: null,
        routeReflectorClusterId: null,
      },
      {
        kind: 'Host',
        name: 'compute-2',
        ipv4Address: '172.31.0.2',
        ipv6Address: null,
        asNumber: null,
        routeReflectorClusterId: null,
      },
    ]);
  });

  it('finds an endpoint by id through its location, or by looking when the location is missing', async () => {
    expect(JSON.parse((await run('get', 'endpoint', 'ep2', '-o', 'json')).stdout).host).toBe(
      'compute-2',
    );
    await store.delete(keys.endpointLocation('ep2'));
    expect(JSON.parse((await run('get', 'endpoint', 'ep2', '-o', 'json')).stdout).host).toBe(
      'compute-2',
    );
  });

  it('filters by --host', async () => {
    const r = await run('get', 'endpoints', '--host', 'compute-2', '-o', 'json');
    expect((JSON.parse(r.stdout) as { id: string }[]).map((e) => e.id)).toEqual(['ep2']);
    const bad = await run('get', 'networks', '--host', 'compute-2');
    expect(bad.code).toBe(EXIT.USAGE);
    expect(bad.stderr).toMatch(/Network resources do not belong to a host/);
  });

  it('get all: every kind but status and location records, in one consistent read', async () => {
    const r = await run('get', 'all', '-o', 'json');
    const kinds = (JSON.parse(r.stdout) as { kind: string }[]).map((d) => d.kind);
    expect([...new Set(kinds)].sort().join(' ')).toBe(
      'BgpConfiguration BgpPeer Endpoint Host IpPool Network SecurityGroup Subnet',
    );
    const table = await run('get', 'all');
    expect(table.stdout).toMatch(/^Network\nID +MTU/);
    expect(table.stdout).toContain('\nHost\nNAME');
    expect((await run('get', 'all', 'x')).code).toBe(EXIT.USAGE);
  });

  it('exits 3 for a missing id (still printing those found), 2 for an unknown kind', async () => {
    const r = await run('get', 'network', 'net-a', 'nope', '-o', 'json');
    expect(r.code).toBe(EXIT.NOT_FOUND);
    expect(JSON.parse(r.stdout)).toMatchObject([{ id: 'net-a' }]);
    expect(r.stderr).toBe('Network nope not found\n');
    const k = await run('get', 'widgets');
    expect(k.code).toBe(EXIT.USAGE);
    expect(k.stderr).toMatch(/^calyxctl: 'widgets' is not a kind \(kinds: Network, Subnet/);
  });

  it('reports an empty list on stderr (table) or as an empty document list', async () => {
    const t = await run('get', 'ipamblocks');
    expect(t).toMatchObject({
      code: EXIT.OK,
      stdout: '',
      stderr: 'no IpamBlock resources found\n',
    });
    expect((await run('get', 'blocks', '-o', 'json')).stdout).toBe('[]\n');
    expect((await run('get', 'blocks', '-o', 'yaml')).stdout).toBe('');
  });

  it('shows status records, by id or host/id', async () => {
    await putEndpointStatus(store, ['compute-1', 'ep1', 'up', '2026-01-01T00:00:00Z']);
    for (const id of ['ep1', 'compute-1/ep1']) {
      const r = await run('get', 'endpointstatus', id);
      expect(rows(r.stdout)[1]).toEqual(['compute-1', 'ep1', 'up', '2026-01-01T00:00:00Z', '-']);
    }
  });

  it('sets aside a stored value that fails validation (warning, exit 1) and shows the rest', async () => {
    await store.put(keys.network('broken'), JSON.stringify({ id: 'broken', mtu: 5 }));
    const r = await run('get', 'networks', '-o', 'json');
    expect(r.code).toBe(EXIT.FAILURE);
    expect((JSON.parse(r.stdout) as { id: string }[]).map((n) => n.id)).toEqual(['net-a']);
    expect(r.stderr).toMatch(
      /warning: \/calyx\/v1\/network\/broken holds an invalid value: Network broken: mtu 5/,
    );
    const one = await run('get', 'network', 'broken');
    expect(one.code).toBe(EXIT.FAILURE);
  });
});

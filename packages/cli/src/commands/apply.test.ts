import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { UnavailableError, type Datastore } from '@calyx/datastore';
import { createMemoryDatastore, type MemoryDatastore } from '@calyx/datastore-memory';
import { keys } from '@calyx/model';
import { EXIT } from '../exit-codes.js';
import {
  allUnchanged,
  calyxctl,
  endpoint,
  intercepted,
  seed,
  snapshot,
  tempDirFixture,
} from '../harness.js';

const networks = (n: number, from = 0) =>
  Array.from({ length: n }, (_, i) => ({ kind: 'Network', id: `n${from + i}`, mtu: 1400 }));

describe('calyxctl apply', () => {
  const dir = tempDirFixture('calyxctl-apply');
  let store: MemoryDatastore;
  const run = (argv: string[], extra: Parameters<typeof calyxctl>[1] = {}) =>
    calyxctl(argv, { datastore: store, cwd: dir.path, ...extra });
  const file = async (name: string, text: string) => {
    await writeFile(join(dir.path, name), text);
    return name;
  };

  beforeEach(async () => {
    store = createMemoryDatastore();
    await seed(store);
  });

  it('creates, then leaves unchanged, then updates (create-or-update) from a YAML file', async () => {
    const f = await file(
      'n.yaml',
      'kind: Network\nid: net-b\nmtu: 9000\n---\nkind: IpPool\nname: pool-b\ncidr: 10.66.0.0/16\n',
    );
    const first = await run(['apply', '-f', f]);
    expect(first).toMatchObject({
      code: EXIT.OK,
      stdout: 'Network net-b created\nIpPool pool-b created\n',
    });
    expect(JSON.parse((await store.get(keys.network('net-b')))!.value)).toMatchObject({
      mtu: 9000,
    });
    const rev = await store.revision();
    expect((await run(['apply', '-f', f])).stdout).toBe(
      'Network net-b unchanged\nIpPool pool-b unchanged\n',
    );
    expect(await store.revision()).toBe(rev);
    await file('n.yaml', 'kind: Network\nid: net-b\nmtu: 1450\n');
    expect((await run(['apply', '-f', 'n.yaml'])).stdout).toBe('Network net-b configured\n');
    expect(JSON.parse((await store.get(keys.network('net-b')))!.value).mtu).toBe(1450);
  });

  it('writes an endpoint with its location record, and moves it between hosts in one transaction', async () => {
    const doc = (host: string | null) =>
      JSON.stringify({ kind: 'Endpoint', ...endpoint('ep9', host, '10.65.0.90') });
    expect((await run(['apply', '-f', '-'], { stdin: doc('compute-1') })).stdout).toBe(
      'Endpoint ep9 created\n',
    );
    expect(JSON.parse((await store.get(keys.endpointLocation('ep9')))!.value)).toEqual({
      id: 'ep9',
      host: 'compute-1',
    });
    const rev = await store.revision();
    const moved = await run(['apply', '-f', '-'], { stdin: doc('compute-2') });
    expect(moved.stdout).toBe('Endpoint ep9 configured (moved from compute-1 to compute-2)\n');
    expect(await store.revision()).toBe(rev + 1n); // one transaction
    expect(await store.get(keys.endpoint('compute-1', 'ep9'))).toBeUndefined();
    expect(await store.get(keys.endpoint('compute-2', 'ep9'))).toBeDefined();
    expect(JSON.parse((await store.get(keys.endpointLocation('ep9')))!.value).host).toBe(
      'compute-2',
    );
    const unbound = await run(['apply', '-f', '-'], { stdin: doc(null) });
    expect(unbound.stdout).toBe('Endpoint ep9 configured (moved from compute-2 to (unbound))\n');
    expect(await store.get(keys.endpoint(null, 'ep9'))).toBeDefined();
  });

  it('repairs a missing location record and removes a stray copy under another host', async () => {
    await store.delete(keys.endpointLocation('ep1'));
    await store.put(
      keys.endpoint('compute-2', 'ep1'),
      (await store.get(keys.endpoint('compute-1', 'ep1')))!.value,
    );
    const r = await run(['apply', '-f', '-'], {
      stdin: JSON.stringify({ kind: 'Endpoint', ...endpoint('ep1', 'compute-1', '10.65.0.10') }),
    });
    expect(r.stdout).toBe('Endpoint ep1 configured (moved from compute-2 to compute-1)\n');
    expect(await store.get(keys.endpoint('compute-2', 'ep1'))).toBeUndefined();
    expect(await store.get(keys.endpointLocation('ep1'))).toBeDefined();
  });

  it('validates every document first: reports each bad one and writes nothing (exit 2)', async () => {
    const before = await snapshot(store);
    const f = await file(
      'bad.yaml',
      [
        'kind: Network',
        'id: fine',
        '---',
        'kind: Subnet',
        'id: s2',
        'networkId: net-a',
        'cidr: 10.70.0.0/24',
        'gatewayIp: 10.71.0.1',
        '---',
        'kind: Host',
        'name: compute-3',
        '---',
        'kind: Gadget',
        'id: g',
      ].join('\n'),
    );
    const r = await run(['apply', '-f', f]);
    expect(r.code).toBe(EXIT.USAGE);
    expect(r.stdout).toBe('');
    expect(r.stderr.split('\n')).toEqual([
      'bad.yaml: document 2 (line 4): Subnet s2: gatewayIp 10.71.0.1 is outside 10.70.0.0/24',
      'bad.yaml: document 3 (line 10): Host compute-3: ipv4Address (missing) is missing: a host needs an IPv4 or IPv6 BGP address',
      expect.stringMatching(/^bad.yaml: document 4 \(line 13\): kind "Gadget" is not a kind/),
      '3 invalid documents: nothing was written',
      '',
    ]);
    expect(await snapshot(store)).toEqual(before);
    const syntax = await run(['apply', '-f', '-'], { stdin: '[{"kind": "Network", ' });
    expect(syntax.code).toBe(EXIT.USAGE);
    expect(syntax.stderr).toMatch(/^stdin: input: not valid JSON/);
    expect(await snapshot(store)).toEqual(before);
  });

  it('rejects empty input and unreadable files (exit 2)', async () => {
    expect(await run(['apply', '-f', '-'], { stdin: '---\n' })).toMatchObject({
      code: EXIT.USAGE,
      stderr: 'stdin: no documents\n',
    });
    const missing = await run(['apply', '-f', 'nope.yaml']);
    expect(missing.code).toBe(EXIT.USAGE);
    expect(missing.stderr).toMatch(/nope.yaml: ENOENT/);
    expect((await run(['apply'])).code).toBe(EXIT.USAGE);
  });

  it('round-trips: `get all -o yaml` restores a deployment and re-applies as unchanged', async () => {
    const yaml = (await run(['get', 'all', '-o', 'yaml'])).stdout;
    const again = await run(['apply', '-f', '-'], { stdin: yaml });
    expect(again.code).toBe(EXIT.OK);
    expect(allUnchanged(again.stdout)).toBe(true);
    const fresh = createMemoryDatastore();
    const restored = await calyxctl(['apply', '-f', '-'], { datastore: fresh, stdin: yaml });
    expect(restored.code).toBe(EXIT.OK);
    // The same records (key order inside values may differ: schemas reorder on re-parse).
    const records = async (s: Datastore) =>
      (await s.list('/')).items.map((i) => [i.key, JSON.parse(i.value) as unknown]);
    expect(await records(fresh)).toEqual(await records(store));
    const json = (await run(['get', 'endpoint', 'ep1', '-o', 'json'])).stdout;
    expect((await run(['apply', '-f', '-'], { stdin: json })).stdout).toBe(
      'Endpoint ep1 unchanged\n',
    );
  });

  it('dry run: validates and says what would change, writes nothing', async () => {
    const before = await snapshot(store);
    const r = await run(['apply', '--dry-run', '-f', '-'], {
      stdin: stringify([{ kind: 'Network', id: 'net-a', mtu: 9000 }, ...networks(1)]),
    });
    expect(r.stdout).toBe('Network net-a configured (dry run)\nNetwork n0 created (dry run)\n');
    expect(await snapshot(store)).toEqual(before);
  });

  it('splits what exceeds one transaction (says so), keeping each document whole; progress only on a TTY', async () => {
    const docs = networks(100);
    const piped = await run(['apply', '-f', '-'], { stdin: JSON.stringify(docs) });
    expect(piped.code).toBe(EXIT.OK);
    expect(piped.stdout.trim().split('\n')).toHaveLength(100);
    expect(piped.stderr).toBe(
      "100 documents make 100 writes; a transaction holds at most 42 (128 datastore operations): writing in 3 transactions, each document's records together in one\n",
    );
    const tty = await run(['apply', '-f', '-'], {
      stdin: JSON.stringify(networks(50, 100)),
      tty: true,
    });
    const frames = tty.stderr.split('\r\x1b[K').filter(Boolean);
    expect(frames).toContainEqual(expect.stringMatching(/^reading \[#+\] 50\/50$/));
    expect(frames).toContainEqual(expect.stringMatching(/^applying \[#+\] 50\/50$/));
    expect(tty.stderr.endsWith('\r\x1b[K')).toBe(true);
    expect(tty.stdout).not.toContain('\x1b');
  });

  it('retries a transaction that lost to a concurrent writer, planning it again', async () => {
    const racing = intercepted(store, async (_req, n) => {
      if (n === 1)
        await store.put(
          keys.network('n0'),
          JSON.stringify({ id: 'n0', name: '', project: '', mtu: 1500 }),
        );
    });
    const r = await calyxctl(['apply', '-f', '-'], {
      datastore: racing,
      stdin: JSON.stringify(networks(1)),
    });
    expect(r).toMatchObject({ code: EXIT.OK, stdout: 'Network n0 configured\n' });
    expect(JSON.parse((await store.get(keys.network('n0')))!.value).mtu).toBe(1400);
  });

  it('exits 5 when it keeps losing, having written nothing', async () => {
    let mtu = 1000;
    const racing = intercepted(store, async () => {
      await store.put(
        keys.network('net-a'),
        JSON.stringify({ id: 'net-a', name: '', project: '', mtu: mtu++ }),
      );
    });
    const r = await calyxctl(['apply', '-f', '-'], {
      datastore: racing,
      stdin: JSON.stringify([{ kind: 'Network', id: 'net-a', mtu: 9000 }, ...networks(1)]),
    });
    expect(r.code).toBe(EXIT.CONFLICT);
    expect(r.stderr).toMatch(/^calyxctl: key '\/calyx\/v1\/network\/net-a' changed/);
    expect(await store.get(keys.network('n0'))).toBeUndefined();
  });

  it('reports what was and was not written when a later transaction fails', async () => {
    const failing = intercepted(store, async (_req, n) => {
      if (n === 2) throw new UnavailableError('etcd unavailable: connection reset');
    });
    const r = await calyxctl(['apply', '-f', '-'], {
      datastore: failing,
      stdin: JSON.stringify(networks(50)),
    });
    expect(r.code).toBe(EXIT.UNAVAILABLE);
    expect(r.stdout.trim().split('\n')).toHaveLength(42);
    expect(r.stderr).toMatch(/transaction 2 of 2 failed: etcd unavailable: connection reset/);
    expect(r.stderr).toMatch(
      /written: 42 document\(s\) in 1 transaction\(s\); not written: Network n42, .*Network n49\n$/,
    );
  });
});

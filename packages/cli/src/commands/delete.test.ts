import { beforeEach, describe, expect, it } from 'vitest';
import { createMemoryDatastore, type MemoryDatastore } from '@calyx/datastore-memory';
import { keys } from '@calyx/model';
import { EXIT } from '../exit-codes.js';
import { calyxctl, intercepted, seed, snapshot } from '../harness.js';

describe('calyxctl delete', () => {
  let store: MemoryDatastore;
  const run = (argv: string[], stdin?: string) =>
    calyxctl(argv, { datastore: store, ...(stdin !== undefined ? { stdin } : {}) });

  beforeEach(async () => {
    store = createMemoryDatastore();
    await seed(store);
  });

  it('deletes by kind and ids', async () => {
    const r = await run(['delete', 'bgppeer', 'edge']);
    expect(r).toMatchObject({ code: EXIT.OK, stdout: 'BgpPeer edge deleted\n' });
    expect(await store.get(keys.bgpPeer('edge'))).toBeUndefined();
    const two = await run(['delete', 'hosts', 'compute-1', 'compute-2']);
    expect(two.stdout).toBe('Host compute-1 deleted\nHost compute-2 deleted\n');
  });

  it('deletes an endpoint with its location record, in one transaction', async () => {
    const rev = await store.revision();
    expect((await run(['delete', 'port', 'ep1'])).stdout).toBe('Endpoint ep1 deleted\n');
    expect(await store.get(keys.endpoint('compute-1', 'ep1'))).toBeUndefined();
    expect(await store.get(keys.endpointLocation('ep1'))).toBeUndefined();
    expect(await store.revision()).toBe(rev + 1n);
  });

  it('deletes nothing when any is missing (exit 3), unless --ignore-not-found', async () => {
    const before = await snapshot(store);
    const r = await run(['delete', 'network', 'net-a', 'nope', 'gone']);
    expect(r.code).toBe(EXIT.NOT_FOUND);
    expect(r.stderr).toBe(
      'Network nope not found\nNetwork gone not found\nnothing was deleted (--ignore-not-found deletes the others)\n',
    );
    expect(await snapshot(store)).toEqual(before);
    const ignoring = await run(['delete', 'network', 'net-a', 'nope', '--ignore-not-found']);
    expect(ignoring).toMatchObject({
      code: EXIT.OK,
      stdout: 'Network net-a deleted\n',
      stderr: 'Network nope not found (ignored)\n',
    });
  });

  it('deletes the resources of a file (what apply wrote), by their keys', async () => {
    const yaml = (await run(['get', 'endpoints', '-o', 'yaml'])).stdout;
    const r = await run(['delete', '-f', '-'], yaml);
    expect(r.stdout).toBe('Endpoint ep1 deleted\nEndpoint ep2 deleted\n');
    expect((await store.list('/calyx/v1/endpoint-location/')).items).toEqual([]);
    const again = await run(['delete', '-f', '-'], yaml);
    expect(again.code).toBe(EXIT.NOT_FOUND);
  });

  it('a resource deleted by someone else meanwhile is already deleted, not an error', async () => {
    const racing = intercepted(store, async (_req, n) => {
      if (n === 1) await store.delete(keys.network('net-a'));
    });
    const r = await calyxctl(['delete', 'network', 'net-a'], {
      datastore: racing,
    });
    expect(r).toMatchObject({ code: EXIT.OK, stdout: 'Network net-a already deleted\n' });
  });

  it('dry run deletes nothing', async () => {
    const before = await snapshot(store);
    expect((await run(['delete', 'sg', 'sg-web', '--dry-run'])).stdout).toBe(
      'SecurityGroup sg-web deleted (dry run)\n',
    );
    expect(await snapshot(store)).toEqual(before);
  });

  it('refuses bad usage (exit 2), writing nothing', async () => {
    const before = await snapshot(store);
    expect((await run(['delete', 'network'])).code).toBe(EXIT.USAGE);
    expect((await run(['delete'])).code).toBe(EXIT.USAGE);
    expect((await run(['delete', 'network', 'x', '-f', '-'], '')).code).toBe(EXIT.USAGE);
    const loc = await run(['delete', 'endpointlocation', 'ep1']);
    expect(loc.code).toBe(EXIT.USAGE);
    expect(loc.stderr).toMatch(/go with their Endpoint/);
    const invalid = await run(['delete', '-f', '-'], 'kind: Network\nid: "bad id"\n');
    expect(invalid.code).toBe(EXIT.USAGE);
    expect(invalid.stderr).toMatch(/document 1 \(line 1\): Network bad id: id/);
    expect(await snapshot(store)).toEqual(before);
  });
});

import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  CompactedError,
  FutureRevisionError,
  InvalidArgumentError,
  LeaseNotFoundError,
  UnavailableError,
} from '@calyx/datastore';
import { Keyspace, mapError, prefixEnd, toEtcdCompare } from './codec.js';
import { parseEtcdUrl } from './index.js';

describe('parseEtcdUrl', () => {
  it('reads endpoints, namespace, credentials and timeouts', () => {
    expect(parseEtcdUrl('etcd://10.0.0.5:2379,10.0.0.6:2379/calyx-prod?timeoutMs=2000')).toEqual({
      endpoints: ['http://10.0.0.5:2379', 'http://10.0.0.6:2379'],
      namespace: '/calyx-prod',
      requestTimeoutMs: 2000,
    });
    expect(parseEtcdUrl('etcd://calyx:s%40cret@[::1]:2379')).toEqual({
      endpoints: ['http://[::1]:2379'],
      auth: { username: 'calyx', password: 's@cret' },
    });
    expect(parseEtcdUrl('etcds://etcd.example:2379').endpoints).toEqual([
      'https://etcd.example:2379',
    ]);
  });

  it('loads TLS files for etcds:// and refuses them without TLS', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'calyx-etcd-url-'));
    for (const f of ['ca.pem', 'cert.pem', 'key.pem']) await writeFile(join(dir, f), f);
    const q = `ca=${dir}/ca.pem&cert=${dir}/cert.pem&key=${dir}/key.pem`;
    const o = parseEtcdUrl(`etcds://h:2379?${q}`);
    expect(o.tls?.ca.toString()).toBe('ca.pem');
    expect(o.tls?.cert?.toString()).toBe('cert.pem');
    expect(() => parseEtcdUrl(`etcd://h:2379?${q}`)).toThrow(/need etcds/);
    expect(() => parseEtcdUrl(`etcds://h:2379?cert=${dir}/cert.pem`)).toThrow(/go together/);
    expect(() => parseEtcdUrl(`etcds://h:2379?ca=${dir}/missing.pem`)).toThrow(/cannot read/);
  });

  it('rejects what is not an etcd URL or endpoint', () => {
    expect(() => parseEtcdUrl('redis://h:6379')).toThrow(InvalidArgumentError);
    expect(() => parseEtcdUrl('etcd://h')).toThrow(/host:port/);
    expect(() => parseEtcdUrl('etcd://h:2379,;rm:1')).toThrow(/host:port/);
  });
});

describe('codec', () => {
  it('computes the range end of a prefix', () => {
    expect(prefixEnd(Buffer.from('/a/'))).toEqual(Buffer.from('/a0'));
    expect(prefixEnd(Buffer.from([0x61, 0xff]))).toEqual(Buffer.from([0x62]));
    expect(prefixEnd(Buffer.from([0xff]))).toEqual(Buffer.from([0]));
  });

  it('maps keys into and out of a namespace', () => {
    const ks = new Keyspace('/ns');
    expect(ks.encode('/calyx/v1/x').toString()).toBe('/ns/calyx/v1/x');
    expect(
      ks.toKeyValue({
        key: Buffer.from('/ns/k'),
        value: Buffer.from('v'),
        create_revision: '9007199254740993',
        mod_revision: '9007199254740995',
        version: '2',
        lease: '0',
      }),
    ).toEqual({
      key: '/k',
      value: 'v',
      createRevision: 9007199254740993n,
      modRevision: 9007199254740995n,
      version: 2n,
      lease: null,
    });
  });

  it('expresses existence as a create-revision compare', () => {
    const ks = new Keyspace('');
    expect(toEtcdCompare({ key: '/k', target: 'exists', value: false }, ks)).toMatchObject({
      target: 'Create',
      result: 'Equal',
      create_revision: '0',
    });
    expect(toEtcdCompare({ key: '/k', target: 'version', op: '<', value: 3n }, ks)).toMatchObject({
      target: 'Version',
      result: 'Less',
      version: '3',
    });
  });

  it('turns etcd errors into the contract’s', () => {
    expect(
      mapError(new Error('etcdserver: mvcc: required revision has been compacted'), {
        revision: 5n,
      }),
    ).toBeInstanceOf(CompactedError);
    expect(
      mapError(new Error('etcdserver: mvcc: required revision is a future revision'), {
        revision: 50n,
        current: 7n,
      }),
    ).toBeInstanceOf(FutureRevisionError);
    expect(
      mapError(new Error('etcdserver: requested lease not found'), { lease: 7n }),
    ).toBeInstanceOf(LeaseNotFoundError);
    expect(mapError(new Error('14 UNAVAILABLE: No connection established'), {})).toBeInstanceOf(
      UnavailableError,
    );
    expect(
      mapError(new Error('7 PERMISSION_DENIED: etcdserver: permission denied'), {}),
    ).toMatchObject({ code: 'PERMISSION_DENIED' });
    expect(
      mapError(Object.assign(new Error('Execution prevented'), { isBrokenCircuitError: true }), {}),
    ).toBeInstanceOf(UnavailableError);
    const other = new Error('etcdserver: too many requests');
    expect(mapError(other, {})).toBe(other);
  });
});

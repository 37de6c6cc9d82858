import { describe, expect, it } from 'vitest';
import {
  DatastoreError,
  InvalidArgumentError,
  UnavailableError,
  checkAccess,
  isRefusal,
  InvalidKeyError,
  MAX_TXN_OPS,
  UnsupportedUrlError,
  createDatastore,
  originalUrl,
  validateKey,
  validatePrefix,
  validateTxn,
  type Datastore,
  type DatastoreBackend,
} from './index.js';
import { ReferenceModel } from './testing/index.js';

describe('key validation', () => {
  it.each(['/a', '/calyx/v1/network/n1', '/a-b_c.d:e@f', '/'])('accepts %s', (k) =>
    expect(() => validateKey(k)).not.toThrow(),
  );
  it.each(['', 'a', '/a b', '/a/', '//a', '/\u00e9', '/a\nb'])('rejects %j', (k) =>
    expect(() => validateKey(k)).toThrow(InvalidKeyError),
  );
  it('allows a trailing slash on prefixes only', () => {
    expect(() => validatePrefix('/calyx/v1/')).not.toThrow();
    expect(() => validateKey('/calyx/v1/')).toThrow(/prefix/);
  });
});

describe('transaction validation', () => {
  it('rejects duplicate writes, unknown ops and oversize transactions', () => {
    expect(() =>
      validateTxn({
        compares: [],
        success: [
          { type: 'put', key: '/a', value: '' },
          { type: 'put', key: '/a', value: '' },
        ],
      }),
    ).toThrow("transaction success writes '/a' twice");
    expect(() =>
      validateTxn({
        compares: [],
        success: [],
        failure: [
          { type: 'delete', key: '/a' },
          { type: 'delete', key: '/a' },
        ],
      }),
    ).toThrow(InvalidArgumentError);
    expect(() =>
      validateTxn({
        compares: [],
        success: [
          { type: 'get', key: '/a' },
          { type: 'put', key: '/a', value: '' },
        ],
      }),
    ).not.toThrow();
    expect(() =>
      validateTxn({ compares: [], success: [{ type: 'bogus', key: '/a' } as never] }),
    ).toThrow(/unknown transaction op/);
    expect(() =>
      validateTxn({
        compares: [{ key: '/a', target: 'value', op: '<', value: 'x' } as never],
        success: [],
      }),
    ).toThrow(/'=' and '!='/);
    const many = Array.from({ length: MAX_TXN_OPS + 1 }, (_, i) => ({
      type: 'get' as const,
      key: `/k${i}`,
    }));
    expect(() => validateTxn({ compares: [], success: many })).toThrow(/at most/);
  });
});

describe('createDatastore', () => {
  const seen: string[] = [];
  const fake: DatastoreBackend = {
    schemes: ['etcd', 'etcds'],
    open: async (url) => {
      seen.push(originalUrl(url));
      return {} as Datastore;
    },
  };

  it('dispatches by scheme and keeps comma-separated cluster URLs intact', async () => {
    await createDatastore('etcd://10.0.0.1:2379,10.0.0.2:2379', { backends: [fake] });
    await createDatastore('etcds://etcd.example:2379/?ca=/x', { backends: [fake] });
    expect(seen).toEqual([
      'etcd://10.0.0.1:2379,10.0.0.2:2379',
      'etcds://etcd.example:2379/?ca=/x',
    ]);
  });

  it('names the supported schemes for an unknown one', async () => {
    await expect(createDatastore('redis://h:6379', { backends: [fake] })).rejects.toThrow(
      UnsupportedUrlError,
    );
    await expect(createDatastore('nonsense', { backends: [fake] })).rejects.toThrow(
      'supported: etcd://, etcds://',
    );
  });
});

describe('reference model', () => {
  it('follows etcd semantics for the basics', () => {
    const m = new ReferenceModel(10n);
    expect(m.apply({ op: 'create', key: '/a', value: '1' })).toEqual({ ok: true });
    expect(m.apply({ op: 'create', key: '/a', value: '1' })).toEqual({
      ok: false,
      error: 'ALREADY_EXISTS',
    });
    expect(m.apply({ op: 'update', key: '/a', value: '2', expected: 'stale' })).toEqual({
      ok: false,
      error: 'CONFLICT',
    });
    expect(m.apply({ op: 'delete', key: '/b' })).toEqual({ ok: false, error: 'NOT_FOUND' });
    const r = m.apply({
      op: 'txn',
      compares: [{ key: '/zz', target: 'value', op: '!=', value: 'x' }],
      success: [],
      failure: [{ type: 'delete', key: '/nope' }],
    });
    expect(r).toMatchObject({ ok: true, succeeded: false });
    expect(m.revision).toBe(11n);
    expect(m.list('/')).toMatchObject([{ key: '/a', version: 1n, createRevision: 11n }]);
  });
});

describe('ResourceCache', () => {
  const kv = (key: string, value: unknown, rev = 1n) => ({
    key,
    value: JSON.stringify(value),
    createRevision: rev,
    modRevision: rev,
    version: 1n,
    lease: null,
  });
  it('keeps typed resources by id, follows moves between hosts, reports invalid values', async () => {
    const { ResourceCache } = await import('./index.js');
    const cache = new ResourceCache();
    const ep = { id: 'e1', networkId: 'n1', mac: 'fa:16:3e:00:00:01' };
    const u = cache.apply([
      { type: 'put', key: '/calyx/v1/network/n1', kv: kv('/calyx/v1/network/n1', { id: 'n1' }) },
      {
        type: 'put',
        key: '/calyx/v1/host/h1/endpoint/e1',
        kv: kv('/calyx/v1/host/h1/endpoint/e1', { ...ep, host: 'h1' }),
      },
      {
        type: 'put',
        key: '/calyx/v1/network/bad',
        kv: kv('/calyx/v1/network/bad', { id: 'bad', mtu: 'x' }),
      },
      { type: 'put', key: '/unrelated/key', kv: kv('/unrelated/key', {}) },
    ]);
    expect([...u.kinds].sort()).toEqual(['Endpoint', 'Network']);
    expect(u.invalid.map((i) => i.key)).toEqual(['/calyx/v1/network/bad']);
    expect(cache.get('Network', 'n1')?.mtu).toBe(1500);
    expect(cache.get('Endpoint', 'e1')?.interfaceName).toBe('tape1');
    // Move to h2: the new key is written before the old one is deleted.
    cache.apply([
      {
        type: 'put',
        key: '/calyx/v1/host/h2/endpoint/e1',
        kv: kv('/calyx/v1/host/h2/endpoint/e1', { ...ep, host: 'h2' }, 2n),
      },
      { type: 'delete', key: '/calyx/v1/host/h1/endpoint/e1', prev: undefined },
    ]);
    expect(cache.get('Endpoint', 'e1')?.host).toBe('h2');
    cache.apply([{ type: 'delete', key: '/calyx/v1/host/h2/endpoint/e1', prev: undefined }]);
    expect(cache.size('Endpoint')).toBe(0);
  });
});

describe('checkAccess', () => {
  const refused = () =>
    Promise.reject(new DatastoreError('PERMISSION_DENIED', 'etcd refused: authentication failed'));
  it('tells a store that answers, one that refuses, and one that is not reachable apart', async () => {
    expect(await checkAccess({ revision: async () => 7n })).toBe('reachable');
    await expect(checkAccess({ revision: refused })).rejects.toThrow(/authentication failed/);
    expect(isRefusal(await checkAccess({ revision: refused }).catch((e: unknown) => e))).toBe(true);
    const down = () => Promise.reject(new UnavailableError('etcd unavailable: ECONNREFUSED'));
    expect(await checkAccess({ revision: down })).toBe('unreachable');
    // No answer at all (a store that hangs): unreachable after the timeout, and a late refusal
    // is not an unhandled rejection.
    const late = () =>
      new Promise<bigint>((_, reject) =>
        setTimeout(() => reject(new DatastoreError('PERMISSION_DENIED', 'late')), 30),
      );
    expect(await checkAccess({ revision: late }, { timeoutMs: 5 })).toBe('unreachable');
    await new Promise((r) => setTimeout(r, 40));
  });
});

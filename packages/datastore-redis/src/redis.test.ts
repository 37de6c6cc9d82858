import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  DatastoreError,
  InvalidArgumentError,
  UnavailableError,
  createDatastore,
  originalUrl,
  type WatchEvent,
} from '@calyx/datastore';
import { decodeEvents, entryFields, entryRevision, mapError } from './codec.js';
import { hashTag, keyRange, prefixEnd, prefixRange } from './keys.js';
import { SCRIPT } from './script.js';
import {
  RedisBackend,
  RedisDatastore,
  StoreKeys,
  parseRedisUrl,
  validateNamespace,
} from './index.js';

describe('parseRedisUrl', () => {
  it('reads host, port, database, credentials and store options', () => {
    expect(
      parseRedisUrl('redis://10.0.0.5:6380/2?namespace=prod&timeoutMs=2000&history=5000'),
    ).toEqual({
      redis: { host: '10.0.0.5', port: 6380, db: 2 },
      namespace: 'prod',
      requestTimeoutMs: 2000,
      historyRevisions: 5000,
    });
    expect(parseRedisUrl('redis://h/?waitReplicas=1&waitTimeoutMs=500').waitForReplicas).toEqual({
      replicas: 1,
      timeoutMs: 500,
    });
    expect(parseRedisUrl('redis://h/?waitReplicas=2').waitForReplicas).toEqual({
      replicas: 2,
      timeoutMs: 1000,
    });
    expect(() => parseRedisUrl('redis://h/?waitReplicas=0')).toThrow(/waitReplicas/);
    expect(parseRedisUrl('redis://calyx:s%40cret@[::1]')).toEqual({
      redis: { host: '::1', port: 6379, username: 'calyx', password: 's@cret' },
    });
    expect(parseRedisUrl('redis://:only-password@redis.example/').redis).toEqual({
      host: 'redis.example',
      port: 6379,
      password: 'only-password',
    });
    expect(parseRedisUrl('rediss://redis.example:6379').redis).toEqual({
      host: 'redis.example',
      port: 6379,
      tls: {},
    });
  });

  it('loads TLS files for rediss:// and refuses them without TLS', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'calyx-redis-url-'));
    for (const f of ['ca.pem', 'cert.pem', 'key.pem']) await writeFile(join(dir, f), f);
    const q = `ca=${dir}/ca.pem&cert=${dir}/cert.pem&key=${dir}/key.pem`;
    const tls = parseRedisUrl(`rediss://h:6379?${q}`).redis.tls;
    expect(String(tls?.ca)).toBe('ca.pem');
    expect(String(tls?.cert)).toBe('cert.pem');
    expect(String(tls?.key)).toBe('key.pem');
    expect(() => parseRedisUrl(`redis://h:6379?${q}`)).toThrow(/need rediss/);
    expect(() => parseRedisUrl(`rediss://h:6379?cert=${dir}/cert.pem`)).toThrow(/go together/);
    expect(() => parseRedisUrl(`rediss://h:6379?ca=${dir}/missing.pem`)).toThrow(/cannot read/);
  });

  it('maps redis+sentinel:// onto ioredis sentinel options', () => {
    expect(
      parseRedisUrl(
        'redis+sentinel://app:pw@10.0.0.1:26380,10.0.0.2,[fd00::3]:5000/my%20primary/1?namespace=site-a&sentinelUsername=watcher&sentinelPassword=sp',
      ),
    ).toEqual({
      redis: {
        sentinels: [
          { host: '10.0.0.1', port: 26380 },
          { host: '10.0.0.2', port: 26379 },
          { host: 'fd00::3', port: 5000 },
        ],
        name: 'my primary',
        db: 1,
        username: 'app',
        password: 'pw',
        sentinelUsername: 'watcher',
        sentinelPassword: 'sp',
      },
      namespace: 'site-a',
    });
    expect(parseRedisUrl('redis+sentinel://127.0.0.1:26379/mymaster').redis).toEqual({
      sentinels: [{ host: '127.0.0.1', port: 26379 }],
      name: 'mymaster',
    });
    const secure = parseRedisUrl('rediss+sentinel://s1:26379/m').redis;
    expect(secure).toMatchObject({ tls: {}, sentinelTLS: {}, enableTLSForSentinelMode: true });
  });

  it('rejects what is not a Redis datastore URL', () => {
    expect(() => parseRedisUrl('etcd://h:2379')).toThrow(InvalidArgumentError);
    expect(() => parseRedisUrl('redis://h:99999')).toThrow(/host\[:port\]/);
    expect(() => parseRedisUrl('redis://h:6379;rm')).toThrow(/host\[:port\]/);
    expect(() => parseRedisUrl('redis://h1:6379,h2:6379')).toThrow(/one host only/);
    expect(() => parseRedisUrl('redis://h/zero')).toThrow(/must be a number/);
    expect(() => parseRedisUrl('redis://h/0/extra')).toThrow(/unexpected path/);
    expect(() => parseRedisUrl('redis+sentinel://h:26379')).toThrow(/masterName/);
    expect(() => parseRedisUrl('redis://h?sentinelPassword=x')).toThrow(/need redis\+sentinel/);
    expect(() => parseRedisUrl('redis://h?namspace=typo')).toThrow(/unknown parameter 'namspace'/);
    expect(() => parseRedisUrl('redis://h?namespace=a{b}')).toThrow(InvalidArgumentError);
    expect(() => parseRedisUrl('redis://h?timeoutMs=0')).toThrow(/timeoutMs/);
  });
});

describe('RedisBackend', () => {
  it('serves the redis schemes and fails fast when Redis cannot be reached', async () => {
    const backend = new RedisBackend();
    expect(backend.schemes).toEqual(['redis', 'rediss', 'redis+sentinel', 'rediss+sentinel']);
    // Port 1 on loopback: nothing listens there.
    const t0 = Date.now();
    await expect(
      createDatastore('redis://127.0.0.1:1?timeoutMs=1000', { backends: [backend] }),
    ).rejects.toBeInstanceOf(UnavailableError);
    expect(Date.now() - t0).toBeLessThan(5000);
  });

  it('gets sentinel lists through createDatastore intact', async () => {
    const seen: string[] = [];
    const spy = {
      schemes: ['redis+sentinel'],
      open: async (url: URL) => {
        seen.push(originalUrl(url));
        throw new Error('not connecting');
      },
    };
    const url = 'redis+sentinel://app:p%40w@127.0.0.1:26379,127.0.0.1:26380/mymaster/1?namespace=x';
    await expect(createDatastore(url, { backends: [spy] })).rejects.toThrow('not connecting');
    expect(seen).toEqual([url]);
  });

  it('refuses ioredis keyPrefix (the namespace is the key prefix)', () => {
    expect(
      () => new RedisDatastore({ redis: { keyPrefix: 'x:', lazyConnect: true }, namespace: 'n' }),
    ).toThrow(/namespace/);
  });
});

describe('key encoding', () => {
  it('puts every key of a store under the hash tag of its namespace', () => {
    const k = new StoreKeys('calyx-prod');
    const all = [
      k.meta,
      k.index,
      k.log,
      k.leases,
      k.leaseTtls,
      k.leaseKeys(4097n),
      k.data('/calyx/v1/network/n1'),
      // Keys may hold braces themselves: only the first {…} counts.
      k.data('/weird/{other}/x'),
      k.data('/}{'),
    ];
    expect(all.slice(0, 7)).toEqual([
      '{calyx-prod}:meta',
      '{calyx-prod}:idx',
      '{calyx-prod}:log',
      '{calyx-prod}:leases',
      '{calyx-prod}:lttl',
      '{calyx-prod}:lk:4097',
      '{calyx-prod}:k:/calyx/v1/network/n1',
    ]);
    for (const key of all) expect(hashTag(key)).toBe('calyx-prod');
    expect(new StoreKeys().tag).toBe('{calyx}');
  });

  it('derives the same key names in the Lua script', () => {
    expect(SCRIPT).toContain('local P = string.sub(META, 1, -5)');
    for (const part of [
      "P .. 'idx'",
      "P .. 'log'",
      "P .. 'leases'",
      "P .. 'lttl'",
      "P .. 'k:'",
      "P .. 'lk:'",
    ])
      expect(SCRIPT).toContain(part);
  });

  it('accepts only namespaces that keep the hash tag intact', () => {
    for (const ok of ['calyx', 'a', 'site-a/prod_1', 'x'.repeat(128)]) validateNamespace(ok);
    for (const bad of ['', 'a b', 'a{b', 'a}b', 'é', 'x'.repeat(129)])
      expect(() => validateNamespace(bad)).toThrow(InvalidArgumentError);
  });

  it('turns prefixes and keys into ZRANGEBYLEX bounds', () => {
    expect(prefixEnd('/a/')).toBe('/a0');
    expect(prefixEnd('/')).toBe('0');
    expect(prefixEnd('/~')).toBe('/\x7f');
    const r = prefixRange('/a/');
    expect([r.min, r.max]).toEqual(['[/a/', '(/a0']);
    expect(['/a/x', '/a/', '/a', '/ab', '/a0'].map(r.contains)).toEqual([
      true,
      true,
      false,
      false,
      false,
    ]);
    const one = keyRange('/k');
    expect([one.min, one.max, one.contains('/k'), one.contains('/k2')]).toEqual([
      '[/k',
      '[/k',
      true,
      false,
    ]);
  });
});

/** Encodes events as the Lua script does (see script.ts). */
function encode(
  events: {
    t: 'p' | 'd';
    key: string;
    value?: string;
    c?: string;
    n?: string;
    l?: string;
    prev?: [string, string, string, string, string];
  }[],
): Buffer {
  const parts: Buffer[] = [];
  for (const e of events) {
    const k = Buffer.from(e.key);
    const v = Buffer.from(e.value ?? '');
    const p = e.prev ? Buffer.from(e.prev[0]) : Buffer.alloc(0);
    const head = [e.t, k.length, v.length, e.c ?? '0', e.n ?? '0', e.l ?? '0'];
    const prev = e.prev ? [1, p.length, ...e.prev.slice(1)] : [0, 0, 0, 0, 0, 0];
    parts.push(Buffer.from(`${[...head, ...prev].join(' ')}\n`), k, v, p);
  }
  return Buffer.concat(parts);
}

describe('event codec', () => {
  const blob = encode([
    { t: 'p', key: '/a/1', value: 'ひらがな\n\u0000end', c: '7', n: '1', l: '0' },
    {
      t: 'p',
      key: '/a/2',
      value: 'new',
      c: '3',
      n: '4',
      l: '4097',
      prev: ['old €', '3', '6', '3', '0'],
    },
    { t: 'd', key: '/b/1', prev: ['gone', '2', '5', '2', '12'] },
  ]);

  it('decodes every event of a revision with its previous value', () => {
    const events = decodeEvents(9n, blob, () => true, true);
    expect(events).toEqual<WatchEvent[]>([
      {
        type: 'put',
        kv: {
          key: '/a/1',
          value: 'ひらがな\n\u0000end',
          createRevision: 7n,
          modRevision: 9n,
          version: 1n,
          lease: null,
        },
        prev: undefined,
      },
      {
        type: 'put',
        kv: {
          key: '/a/2',
          value: 'new',
          createRevision: 3n,
          modRevision: 9n,
          version: 4n,
          lease: 4097n,
        },
        prev: {
          key: '/a/2',
          value: 'old €',
          createRevision: 3n,
          modRevision: 6n,
          version: 3n,
          lease: null,
        },
      },
      {
        type: 'delete',
        key: '/b/1',
        revision: 9n,
        prev: {
          key: '/b/1',
          value: 'gone',
          createRevision: 2n,
          modRevision: 5n,
          version: 2n,
          lease: 12n,
        },
      },
    ]);
  });

  it('filters by key and drops previous values on request', () => {
    const events = decodeEvents(9n, blob, (k) => k.startsWith('/b/'), false);
    expect(events).toEqual([{ type: 'delete', key: '/b/1', revision: 9n, prev: undefined }]);
    expect(() => decodeEvents(9n, blob.subarray(0, blob.length - 2), () => true, true)).toThrow(
      /truncated/,
    );
  });

  it('reads stream entries', () => {
    expect(entryRevision(Buffer.from('123456789012345678-0'))).toBe(123456789012345678n);
    const f = (...parts: string[]) => parts.map((p) => Buffer.from(p));
    const e = entryFields(f('e', 'x', 't', '1700000000.123456', 'p', '1700000000.000001'));
    expect([e.events.toString(), e.token, e.prevToken]).toEqual([
      'x',
      '1700000000.123456',
      '1700000000.000001',
    ]);
    expect(entryFields(f('e', '')).prevToken).toBe('');
    expect(() => entryFields(f('f', 'x'))).toThrow(/without events/);
  });

  it('turns Redis and connection errors into the contract’s', () => {
    for (const msg of [
      'Connection is closed.',
      'Command timed out',
      'connect ECONNREFUSED 127.0.0.1:1',
      'LOADING Redis is loading the dataset in memory',
      "READONLY You can't write against a read only replica.",
      'All sentinels are unreachable. Retrying from scratch after 10ms.',
    ])
      expect(mapError(new Error(msg)), msg).toBeInstanceOf(UnavailableError);
    expect(
      mapError(
        Object.assign(new Error('Reached the max retries'), { name: 'MaxRetriesPerRequestError' }),
      ),
    ).toBeInstanceOf(UnavailableError);
    expect(mapError(new Error('WRONGPASS invalid username-password pair'))).toMatchObject({
      code: 'PERMISSION_DENIED',
    });
    expect(mapError(new Error('NOPERM this user has no permissions'))).toBeInstanceOf(
      DatastoreError,
    );
    expect(
      mapError(new Error("OOM command not allowed when used memory > 'maxmemory'.")),
    ).toMatchObject({
      code: 'RESOURCE_EXHAUSTED',
    });
    const other = new Error('ERR something else');
    expect(mapError(other)).toBe(other);
  });
});

describe('RedisDatastore options', () => {
  it('refuses a durability option that would block forever or outlast its request deadline', () => {
    const redis = { host: '127.0.0.1', port: 1, lazyConnect: true };
    expect(
      () => new RedisDatastore({ redis, waitForReplicas: { replicas: 1, timeoutMs: 0 } }),
    ).toThrow(/WAIT 0 would block forever/);
    expect(
      () =>
        new RedisDatastore({
          redis,
          requestTimeoutMs: 1000,
          waitForReplicas: { replicas: 1, timeoutMs: 1000 },
        }),
    ).toThrow(/timeoutMs < requestTimeoutMs/);
    expect(
      () => new RedisDatastore({ redis, waitForReplicas: { replicas: 0, timeoutMs: 10 } }),
    ).toThrow(/replicas >= 1/);
  });

  it('refuses a watch wait of 0 (every quiet watch would spin)', () => {
    const redis = { host: '127.0.0.1', port: 1, lazyConnect: true };
    expect(() => new RedisDatastore({ redis, watchBlockMs: 0 })).toThrow(/watchBlockMs/);
    expect(() => new RedisDatastore({ redis, watchBlockMs: 1.5 })).toThrow(InvalidArgumentError);
  });
});

import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import type { RedisOptions } from 'ioredis';
import { InvalidArgumentError } from '@calyx/datastore';
import { validateNamespace } from './keys.js';
import type { RedisDatastoreOptions } from './redis-datastore.js';

const SCHEMES = ['redis', 'rediss', 'redis+sentinel', 'rediss+sentinel'] as const;
const PARAMS = new Set([
  'namespace',
  'timeoutMs',
  'history',
  'ca',
  'cert',
  'key',
  'sentinelUsername',
  'sentinelPassword',
  'waitReplicas',
  'waitTimeoutMs',
]);

function hostPort(h: string, defaultPort: number): { host: string; port: number } {
  const m = /^([A-Za-z0-9.-]+|\[[0-9a-fA-F:.]+\])(?::(\d{1,5}))?$/.exec(h);
  const port = m?.[2] === undefined ? defaultPort : Number(m[2]);
  if (!m || port < 1 || port > 65535)
    throw new InvalidArgumentError(`Redis endpoint '${h}' must be host[:port]`);
  return { host: m[1]!.replace(/^\[(.*)\]$/, '$1'), port };
}

function db(segment: string | undefined): { db?: number } {
  if (segment === undefined || segment === '') return {};
  if (!/^\d{1,5}$/.test(segment))
    throw new InvalidArgumentError(`Redis URL: database '${segment}' must be a number`);
  return { db: Number(segment) };
}

/** The TLS files (`ca`, and a client `cert` with its `key`) a URL names, read now. */
function tlsFiles(params: URLSearchParams): Pick<ConnectionOptions, 'ca' | 'cert' | 'key'> {
  const read: { ca?: Buffer; cert?: Buffer; key?: Buffer } = {};
  for (const name of ['ca', 'cert', 'key'] as const) {
    const path = params.get(name);
    if (!path) continue;
    try {
      read[name] = readFileSync(path);
    } catch (e) {
      const why = (e as Error).message;
      throw new InvalidArgumentError(`Redis URL: cannot read ${name} file ${path}: ${why}`);
    }
  }
  if (!read.cert !== !read.key)
    throw new InvalidArgumentError('Redis URL: cert and key go together');
  return read;
}

function positive(name: string, raw: string | null, min: number): number | undefined {
  if (raw === null) return undefined;
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || n < min)
    throw new InvalidArgumentError(`Redis URL: ${name} must be a whole number >= ${min}`);
  return n;
}

/**
 * Parses a Redis datastore URL into `RedisDatastore` options:
 *
 * - `redis://[user:password@]host[:port][/db][?namespace=…&timeoutMs=…&history=…]`
 * - `rediss://…[?ca=…&cert=…&key=…]`: TLS (the `ca` file, or the system's roots); `cert` and
 *   `key` are a client certificate;
 * - `redis+sentinel://[user:password@]host[:port][,host[:port]…]/<masterName>[/db][?…&sentinelUsername=…&sentinelPassword=…]`:
 *   the primary Sentinel names `masterName`, found through any of the listed sentinels
 *   (default port 26379); `user:password` authenticate to the data nodes, the
 *   `sentinel…` parameters to the sentinels. `rediss+sentinel://` speaks TLS to both.
 *
 * `namespace` names the store (default `calyx`); `history` is the number of revisions of
 * history kept; `waitReplicas=N[&waitTimeoutMs=1000]` makes every write wait for N replicas
 * (durability across failover). Files are read here, once; unknown parameters are refused.
 */
export function parseRedisUrl(raw: string): Omit<RedisDatastoreOptions, 'logger'> {
  const m =
    /^([a-z+]+):\/\/(?:([^:@/?#]*)(?::([^@/?#]*))?@)?([^/?#@]+)(\/[^?#]*)?(?:\?([^#]*))?$/.exec(
      raw,
    );
  const scheme = m?.[1] as (typeof SCHEMES)[number] | undefined;
  if (!m || !scheme || !SCHEMES.includes(scheme))
    throw new InvalidArgumentError(`not a Redis URL: ${raw}`);
  const [, , user, password, hosts, path, query] = m;
  const sentinel = scheme.endsWith('+sentinel');
  const secure = scheme.startsWith('rediss');
  const params = new URLSearchParams(query ?? '');
  for (const name of params.keys())
    if (!PARAMS.has(name)) throw new InvalidArgumentError(`Redis URL: unknown parameter '${name}'`);

  const files = tlsFiles(params);
  if (Object.keys(files).length > 0 && !secure)
    throw new InvalidArgumentError('Redis URL: TLS files need rediss:// or rediss+sentinel://');
  const tls: ConnectionOptions | undefined = secure ? files : undefined;

  const auth =
    user || password !== undefined
      ? {
          ...(user ? { username: decodeURIComponent(user) } : {}),
          password: decodeURIComponent(password ?? ''),
        }
      : {};
  const segments = (path ?? '').split('/').slice(1);
  if (segments.at(-1) === '' && segments.length > 0) segments.pop();

  let redis: RedisOptions;
  if (sentinel) {
    const [name, dbSegment, ...rest] = segments;
    if (!name) throw new InvalidArgumentError('Redis URL: redis+sentinel:// needs /<masterName>');
    if (rest.length) throw new InvalidArgumentError(`Redis URL: unexpected path ${path}`);
    const sentinelUsername = params.get('sentinelUsername');
    const sentinelPassword = params.get('sentinelPassword');
    redis = {
      sentinels: hosts!.split(',').map((h) => hostPort(h, 26379)),
      name: decodeURIComponent(name),
      ...db(dbSegment),
      ...auth,
      ...(sentinelUsername ? { sentinelUsername } : {}),
      ...(sentinelPassword !== null ? { sentinelPassword } : {}),
      ...(tls ? { tls, sentinelTLS: tls, enableTLSForSentinelMode: true } : {}),
    };
  } else {
    if (hosts!.includes(','))
      throw new InvalidArgumentError(
        'Redis URL: one host only (use redis+sentinel:// for several)',
      );
    if (params.has('sentinelUsername') || params.has('sentinelPassword'))
      throw new InvalidArgumentError('Redis URL: sentinel parameters need redis+sentinel://');
    const [dbSegment, ...rest] = segments;
    if (rest.length) throw new InvalidArgumentError(`Redis URL: unexpected path ${path}`);
    redis = {
      ...hostPort(hosts!, 6379),
      ...db(dbSegment),
      ...auth,
      ...(tls ? { tls } : {}),
    };
  }

  const namespace = params.get('namespace');
  if (namespace !== null) validateNamespace(namespace);
  const timeout = positive('timeoutMs', params.get('timeoutMs'), 1);
  const history = positive('history', params.get('history'), 0);
  const waitReplicas = positive('waitReplicas', params.get('waitReplicas'), 1);
  const waitTimeoutMs = positive('waitTimeoutMs', params.get('waitTimeoutMs'), 1);
  return {
    redis,
    ...(waitReplicas !== undefined
      ? { waitForReplicas: { replicas: waitReplicas, timeoutMs: waitTimeoutMs ?? 1000 } }
      : {}),
    ...(namespace !== null ? { namespace } : {}),
    ...(timeout !== undefined ? { requestTimeoutMs: timeout } : {}),
    ...(history !== undefined ? { historyRevisions: history } : {}),
  };
}

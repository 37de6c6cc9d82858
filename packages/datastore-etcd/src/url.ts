import { readFileSync } from 'node:fs';
import { InvalidArgumentError } from '@calyx/datastore';
import type { EtcdDatastoreOptions } from './etcd-datastore.js';

/**
 * `etcd://[user:password@]host:port[,host:port…][/namespace][?ca=…&cert=…&key=…&timeoutMs=…]`.
 * `etcds://` connects with TLS (the `ca` file, or the system's roots); `cert` and `key` are
 * a client certificate. The namespace keeps several deployments (or test runs) apart on one
 * etcd. Files are read here, once.
 */
export function parseEtcdUrl(raw: string): Omit<EtcdDatastoreOptions, 'logger'> {
  const m = /^(etcds?):\/\/(?:([^:@/]*)(?::([^@/]*))?@)?([^/?#]+)(\/[^?#]*)?(?:\?([^#]*))?$/.exec(
    raw,
  );
  if (!m) throw new InvalidArgumentError(`not an etcd URL: ${raw}`);
  const [, scheme, user, password, hosts, path, query] = m;
  const secure = scheme === 'etcds';
  const endpoints = hosts!.split(',').map((h) => {
    if (!/^[A-Za-z0-9.-]+:\d{1,5}$|^\[[0-9a-fA-F:]+\]:\d{1,5}$/.test(h))
      throw new InvalidArgumentError(`etcd endpoint '${h}' must be host:port`);
    return `${secure ? 'https' : 'http'}://${h}`;
  });
  const params = new URLSearchParams(query ?? '');
  const file = (name: string): Buffer | undefined => {
    const p = params.get(name);
    if (!p) return undefined;
    try {
      return readFileSync(p);
    } catch (e) {
      throw new InvalidArgumentError(
        `etcd URL: cannot read ${name} file ${p}: ${(e as Error).message}`,
      );
    }
  };
  const ca = file('ca');
  const cert = file('cert');
  const key = file('key');
  if ((cert && !key) || (key && !cert))
    throw new InvalidArgumentError('etcd URL: cert and key go together');
  if ((ca || cert) && !secure) throw new InvalidArgumentError('etcd URL: TLS files need etcds://');
  const namespace = path && path !== '/' ? decodeURIComponent(path.replace(/\/$/, '')) : '';
  const timeout = params.get('timeoutMs');
  return {
    endpoints,
    ...(namespace ? { namespace } : {}),
    ...(user
      ? {
          auth: {
            username: decodeURIComponent(user),
            password: decodeURIComponent(password ?? ''),
          },
        }
      : {}),
    ...(ca || cert
      ? { tls: { ca: ca ?? Buffer.alloc(0), ...(cert ? { cert, key: key! } : {}) } }
      : {}),
    ...(timeout ? { requestTimeoutMs: Number(timeout) } : {}),
  };
}

import type { Clock, Logger } from '@calyx/core';
import { checkAccess } from './access.js';
import { UnsupportedUrlError } from './errors.js';
import type { Datastore } from './types.js';

export interface OpenOptions {
  logger?: Logger;
  clock?: Clock;
  /**
   * Check that the store answers before returning (default true: a clear error at once). A
   * long-running agent passes `'refusals'`: started before its datastore is reachable, it
   * keeps trying (with backoff) instead of failing — but a store that answers and refuses it
   * (credentials, role) is an error at once, since no retry can cure that. `false` skips the
   * check entirely.
   */
  probe?: boolean | 'refusals';
}

/** What a backend is asked: refusals are checked here, after it opened without a probe. */
export type BackendOpenOptions = Omit<OpenOptions, 'probe'> & { probe?: boolean };

/** An adapter's entry point: which URL schemes it serves and how to open one. */
export interface DatastoreBackend {
  readonly schemes: readonly string[];
  open(url: URL, opts: BackendOpenOptions): Promise<Datastore>;
}

/**
 * Opens a datastore by URL (`memory://`, `etcd://h1:2379,h2:2379`, `redis://h:6379`, …)
 * with whichever backends the application passes in.
 */
export async function createDatastore(
  url: string,
  opts: OpenOptions & { backends: readonly DatastoreBackend[] },
): Promise<Datastore> {
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(url)?.[1]?.toLowerCase();
  const supported = opts.backends.flatMap((b) => b.schemes);
  const backend = scheme ? opts.backends.find((b) => b.schemes.includes(scheme)) : undefined;
  if (!backend) throw new UnsupportedUrlError(url, supported);
  // Comma-separated hosts (etcd clusters) are not valid URL authorities: parse the first and
  // leave the raw string to the backend through `url.href`'s original in `search` untouched.
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    parsed = new URL(url.replace(/^([^:]+:\/\/)([^/,]+),[^/]*/, '$1$2'));
    parsed.hash = encodeURIComponent(url);
  }
  const store = await backend.open(parsed, {
    ...(opts.logger ? { logger: opts.logger } : {}),
    ...(opts.clock ? { clock: opts.clock } : {}),
    ...(opts.probe !== undefined ? { probe: opts.probe === true } : {}),
  });
  if (opts.probe !== 'refusals') return store;
  try {
    if ((await checkAccess(store)) === 'unreachable')
      opts.logger?.warn(
        { scheme },
        'datastore not reachable yet; starting anyway, will keep trying',
      );
  } catch (e) {
    await store.close().catch(() => undefined);
    throw e;
  }
  return store;
}

/** The original URL string (handles the comma-separated host lists createDatastore accepts). */
export function originalUrl(url: URL): string {
  return url.hash.length > 1 ? decodeURIComponent(url.hash.slice(1)) : url.href;
}

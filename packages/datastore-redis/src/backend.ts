import { originalUrl, type DatastoreBackend, type BackendOpenOptions } from '@calyx/datastore';
import { RedisDatastore } from './redis-datastore.js';
import { parseRedisUrl } from './url.js';

/** `redis://`, `rediss://`, `redis+sentinel://` and `rediss+sentinel://` for `createDatastore`. */
export class RedisBackend implements DatastoreBackend {
  readonly schemes = ['redis', 'rediss', 'redis+sentinel', 'rediss+sentinel'] as const;

  open(url: URL, opts: BackendOpenOptions): Promise<RedisDatastore> {
    const logger = opts.logger ? { logger: opts.logger } : {};
    const o = { ...parseRedisUrl(originalUrl(url)), ...logger };
    return opts.probe === false ? Promise.resolve(new RedisDatastore(o)) : RedisDatastore.open(o);
  }
}

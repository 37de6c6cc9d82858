import { originalUrl, type DatastoreBackend, type BackendOpenOptions } from '@calyx/datastore';
import { EtcdDatastore } from './etcd-datastore.js';
import { parseEtcdUrl } from './url.js';

/** `etcd://` and `etcds://` for `createDatastore`. */
export class EtcdBackend implements DatastoreBackend {
  readonly schemes = ['etcd', 'etcds'] as const;

  async open(url: URL, opts: BackendOpenOptions): Promise<EtcdDatastore> {
    const store = new EtcdDatastore({
      ...parseEtcdUrl(originalUrl(url)),
      ...(opts.logger ? { logger: opts.logger } : {}),
    });
    if (opts.probe === false) return store;
    // Fail now, with a clear error, when etcd cannot be reached.
    try {
      await store.revision();
    } catch (e) {
      await store.close();
      throw e;
    }
    return store;
  }
}

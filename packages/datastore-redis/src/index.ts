export { RedisDatastore, type RedisDatastoreOptions } from './redis-datastore.js';
export { RedisBackend } from './backend.js';
export { parseRedisUrl } from './url.js';
export { StoreKeys, DEFAULT_NAMESPACE, validateNamespace } from './keys.js';

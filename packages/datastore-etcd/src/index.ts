export { EtcdDatastore, type EtcdDatastoreOptions, type EtcdTls } from './etcd-datastore.js';
export { EtcdBackend } from './backend.js';
export { parseEtcdUrl } from './url.js';

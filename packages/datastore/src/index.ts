export type {
  Revision,
  LeaseId,
  KeyValue,
  ReadOptions,
  ListResult,
  PutOptions,
  UpdateOptions,
  DeleteOptions,
  Compare,
  CompareTarget,
  TxnOp,
  TxnRequest,
  TxnOpResult,
  TxnResult,
  WatchEvent,
  ResyncSignal,
  WatchMessage,
  WatchOptions,
  Lease,
  Datastore,
} from './types.js';
export {
  DatastoreError,
  NotFoundError,
  AlreadyExistsError,
  ConflictError,
  CompactedError,
  FutureRevisionError,
  ClosedError,
  InvalidKeyError,
  InvalidArgumentError,
  ValueTooLargeError,
  LeaseNotFoundError,
  UnavailableError,
  UnsupportedUrlError,
} from './errors.js';
export {
  MAX_KEY_BYTES,
  MAX_VALUE_BYTES,
  MAX_TXN_OPS,
  validateKey,
  validatePrefix,
  validateValue,
  validateRevision,
  validateTtl,
  validateTxn,
  hasPrefix,
} from './validate.js';
export {
  ResourceClient,
  ResourceTxn,
  decodeResource,
  encodeResource,
  kindOfKey,
  type Stored,
} from './resource-client.js';
export { checkAccess, isRefusal } from './access.js';
export { Syncer, type SyncerOptions, type SyncerMessage, type SyncerChange } from './syncer.js';
export { ResourceCache, type CacheUpdate } from './resource-cache.js';
export {
  SyncedReconciler,
  type SyncedReconcilerOptions,
  type ReconcilerStats,
} from './synced-reconciler.js';
export { LeaseKeeper, type LeaseKeeperOptions } from './lease-keeper.js';
export {
  StatusReporter,
  type StatusReporterOptions,
  type EndpointReport,
} from './status-reporter.js';
export {
  LeaderElection,
  FencedDatastore,
  NotLeaderError,
  type Fence,
  type Leadership,
  type LeaderElectionOptions,
} from './election.js';
export {
  createDatastore,
  originalUrl,
  type DatastoreBackend,
  type OpenOptions,
  type BackendOpenOptions,
} from './registry.js';
export { DATASTORE, RESOURCE_CLIENT, datastoreModule } from './di.js';

/** Store revisions and lease ids are int64 in etcd: bigint everywhere. */
export type Revision = bigint;
export type LeaseId = bigint;

/** A stored key with its revisions (etcd's mvccpb.KeyValue). */
export interface KeyValue {
  readonly key: string;
  readonly value: string;
  /** Revision of the create that started this key's current life. */
  readonly createRevision: Revision;
  /** Revision of the last modification. */
  readonly modRevision: Revision;
  /** Modifications since creation; 1 after create. */
  readonly version: bigint;
  /** Lease the key is attached to, or null. */
  readonly lease: LeaseId | null;
}

export interface ReadOptions {
  /** Read the store as it was at this revision (CompactedError once compacted). */
  revision?: Revision;
}

export interface ListResult {
  /** Keys under the prefix, in byte order. */
  items: KeyValue[];
  /** The store revision the list reflects; watch from `revision + 1n` to follow on. */
  revision: Revision;
}

export interface PutOptions {
  lease?: LeaseId;
}

export interface UpdateOptions {
  /** Fail with ConflictError unless the key's modRevision is exactly this. */
  expectedModRevision?: Revision;
  lease?: LeaseId;
}

export interface DeleteOptions {
  expectedModRevision?: Revision;
}

export type CompareTarget = 'modRevision' | 'createRevision' | 'version';

/** A condition of a transaction. A missing key has all revisions and version 0. */
export type Compare =
  | { key: string; target: CompareTarget; op: '=' | '!=' | '<' | '>'; value: bigint }
  | { key: string; target: 'value'; op: '=' | '!='; value: string }
  | { key: string; target: 'exists'; value: boolean };

export type TxnOp =
  | { type: 'put'; key: string; value: string; lease?: LeaseId }
  /** Deleting a missing key is not an error inside a transaction (use a compare). */
  | { type: 'delete'; key: string }
  | { type: 'get'; key: string };

export interface TxnRequest {
  compares: Compare[];
  success: TxnOp[];
  failure?: TxnOp[];
}

export type TxnOpResult =
  | { type: 'put'; kv: KeyValue }
  | { type: 'delete'; deleted: boolean; prev: KeyValue | undefined }
  | { type: 'get'; kv: KeyValue | undefined };

export interface TxnResult {
  succeeded: boolean;
  /** Store revision after the transaction (unchanged when it wrote nothing). */
  revision: Revision;
  results: TxnOpResult[];
}

export type WatchEvent =
  | { type: 'put'; kv: KeyValue; prev: KeyValue | undefined }
  | { type: 'delete'; key: string; revision: Revision; prev: KeyValue | undefined };

/**
 * The last message of a watch whose history is gone: the consumer must re-list and
 * watch again from the list revision + 1.
 */
export interface ResyncSignal {
  type: 'resync';
  reason: 'compacted';
  compactRevision: Revision;
}

export type WatchMessage = WatchEvent | ResyncSignal;

export interface WatchOptions {
  /** First revision to deliver (inclusive). Default: the next revision. */
  fromRevision?: Revision;
  /** Include the previous value in events (etcd prev_kv). Default true. */
  prevKv?: boolean;
  signal?: AbortSignal;
}

export interface Lease {
  id: LeaseId;
  /** Granted TTL (a backend may round it up to its minimum). */
  ttlSeconds: number;
}

/**
 * A revisioned key-value store with etcd's semantics. Keys are `/`-rooted printable ASCII
 * (see `validateKey`); values are strings of at most 1 MiB.
 */
export interface Datastore {
  get(key: string, opts?: ReadOptions): Promise<KeyValue | undefined>;
  /** Every key under `prefix`, read at one revision (adapters paginate internally). */
  list(prefix: string, opts?: ReadOptions): Promise<ListResult>;
  /** Creates `key`; AlreadyExistsError if present. */
  create(key: string, value: string, opts?: PutOptions): Promise<KeyValue>;
  /** Replaces an existing key; NotFoundError if absent, ConflictError on revision mismatch. */
  update(key: string, value: string, opts?: UpdateOptions): Promise<KeyValue>;
  /** Creates or replaces unconditionally. */
  put(key: string, value: string, opts?: PutOptions): Promise<KeyValue>;
  /** Deletes and returns the previous value; NotFoundError if absent, ConflictError on mismatch. */
  delete(key: string, opts?: DeleteOptions): Promise<KeyValue>;
  /** All-or-nothing: if every compare holds, runs `success`, else `failure`, at one revision. */
  txn(req: TxnRequest): Promise<TxnResult>;
  /**
   * Events under `prefix` from `fromRevision` on, in revision order. Ends with a ResyncSignal
   * when that history was compacted; ends quietly on abort or close.
   */
  watch(prefix: string, opts?: WatchOptions): AsyncIterable<WatchMessage>;
  /** The current store revision. */
  revision(): Promise<Revision>;
  /** Forgets history before `revision`: reads and watches from earlier revisions fail/resync. */
  compact(revision: Revision): Promise<void>;
  grantLease(ttlSeconds: number): Promise<Lease>;
  /** Refreshes the lease; returns the remaining TTL. LeaseNotFoundError once expired. */
  keepAliveLease(id: LeaseId): Promise<number>;
  /** Deletes the lease and every key attached to it. */
  revokeLease(id: LeaseId): Promise<void>;
  /** Rejects further calls with ClosedError, ends watches, stops timers. Idempotent. */
  close(): Promise<void>;
}

import {
  KINDS,
  keyOf,
  parseKey,
  safeParseResource,
  ValidationError,
  type InputOf,
  type Kind,
  type ResourceOf,
} from '@calyx/model';
import { AlreadyExistsError, ConflictError, NotFoundError } from './errors.js';
import type { Compare, Datastore, KeyValue, LeaseId, Revision, TxnOp } from './types.js';

/** A resource as stored: its validated value and the revisions of its key. */
export interface Stored<T> {
  readonly key: string;
  readonly value: T;
  readonly createRevision: Revision;
  readonly modRevision: Revision;
  readonly version: bigint;
  /** The lease the key lives on (liveness records), or null. */
  readonly lease: LeaseId | null;
}

/** Decodes a stored value; a value that fails validation throws ValidationError (tagged with the key). */
export function decodeResource<K extends Kind>(kind: K, kv: KeyValue): Stored<ResourceOf<K>> {
  let raw: unknown;
  try {
    raw = JSON.parse(kv.value);
  } catch {
    throw new ValidationError(kind, kv.key, [
      { field: '', value: kv.value.slice(0, 40), problem: `stored at ${kv.key} is not JSON` },
    ]);
  }
  const r = safeParseResource(kind, raw);
  if (!r.ok) throw r.error;
  return {
    key: kv.key,
    value: r.value,
    createRevision: kv.createRevision,
    modRevision: kv.modRevision,
    version: kv.version,
    lease: kv.lease,
  };
}

/** The kind a key holds, per the key layout; undefined for keys outside it. */
export function kindOfKey(key: string): Kind | undefined {
  try {
    const p = parseKey(key);
    return p.kind === 'Leader' ? undefined : p.kind;
  } catch {
    return undefined;
  }
}

/** Serialises a validated resource. Key order is the schema's, so equal resources encode equally. */
export function encodeResource(value: unknown): string {
  return JSON.stringify(value);
}

type Write =
  | { op: 'create'; kind: Kind; key: string; value: string; lease?: LeaseId }
  | {
      op: 'update';
      kind: Kind;
      key: string;
      value: string;
      expectedModRevision?: Revision;
      lease?: LeaseId;
    }
  | { op: 'put'; kind: Kind; key: string; value: string; lease?: LeaseId }
  | { op: 'delete'; kind: Kind; key: string; expectedModRevision?: Revision }
  | { op: 'require'; kind: Kind; key: string };

/**
 * A multi-key change validated in full before anything is written, then committed as one
 * datastore transaction. A lost compare surfaces as the typed error of the first failing key.
 */
export class ResourceTxn {
  private readonly writes: Write[] = [];

  constructor(private readonly client: ResourceClient) {}

  create<K extends Kind>(kind: K, input: InputOf<K>, opts: { lease?: LeaseId } = {}): this {
    const v = this.client.validate(kind, input);
    this.writes.push({
      op: 'create',
      kind,
      key: keyOf(kind, v),
      value: encodeResource(v),
      ...opts,
    });
    return this;
  }

  update<K extends Kind>(
    kind: K,
    input: InputOf<K>,
    opts: { expectedModRevision?: Revision; lease?: LeaseId } = {},
  ): this {
    const v = this.client.validate(kind, input);
    this.writes.push({
      op: 'update',
      kind,
      key: keyOf(kind, v),
      value: encodeResource(v),
      ...opts,
    });
    return this;
  }

  put<K extends Kind>(kind: K, input: InputOf<K>, opts: { lease?: LeaseId } = {}): this {
    const v = this.client.validate(kind, input);
    this.writes.push({ op: 'put', kind, key: keyOf(kind, v), value: encodeResource(v), ...opts });
    return this;
  }

  delete(kind: Kind, key: string, opts: { expectedModRevision?: Revision } = {}): this {
    this.writes.push({ op: 'delete', kind, key, ...opts });
    return this;
  }

  /**
   * Commits only if `key` exists at commit time (nothing is written to it): a precondition on
   * another record, checked in the same transaction. Missing: NotFoundError naming `key`.
   */
  requireExists(kind: Kind, key: string): this {
    this.writes.push({ op: 'require', kind, key });
    return this;
  }

  /** Writes (and preconditions) queued. */
  get size(): number {
    return this.writes.length;
  }

  /** Commits every write or none; returns the revision of the commit. */
  async commit(): Promise<Revision> {
    const compares: Compare[] = [];
    const ops: TxnOp[] = [];
    for (const w of this.writes) {
      switch (w.op) {
        case 'create':
          compares.push({ key: w.key, target: 'exists', value: false });
          ops.push({
            type: 'put',
            key: w.key,
            value: w.value,
            ...(w.lease !== undefined ? { lease: w.lease } : {}),
          });
          break;
        case 'update':
          compares.push(
            w.expectedModRevision !== undefined
              ? { key: w.key, target: 'modRevision', op: '=', value: w.expectedModRevision }
              : { key: w.key, target: 'exists', value: true },
          );
          ops.push({
            type: 'put',
            key: w.key,
            value: w.value,
            ...(w.lease !== undefined ? { lease: w.lease } : {}),
          });
          break;
        case 'put':
          ops.push({
            type: 'put',
            key: w.key,
            value: w.value,
            ...(w.lease !== undefined ? { lease: w.lease } : {}),
          });
          break;
        case 'delete':
          compares.push(
            w.expectedModRevision !== undefined
              ? { key: w.key, target: 'modRevision', op: '=', value: w.expectedModRevision }
              : { key: w.key, target: 'exists', value: true },
          );
          ops.push({ type: 'delete', key: w.key });
          break;
        case 'require':
          compares.push({ key: w.key, target: 'exists', value: true });
          break;
      }
    }
    const failure: TxnOp[] = this.writes.map((w) => ({ type: 'get', key: w.key }));
    const r = await this.client.store.txn({ compares, success: ops, failure });
    if (r.succeeded) return r.revision;
    // Name the first write whose precondition failed.
    this.writes.forEach((w, i) => {
      const res = r.results[i];
      const kv = res?.type === 'get' ? res.kv : undefined;
      if (w.op === 'create' && kv) throw new AlreadyExistsError(w.key);
      if ((w.op === 'update' || w.op === 'delete' || w.op === 'require') && !kv)
        throw new NotFoundError(w.key);
      if (
        (w.op === 'update' || w.op === 'delete') &&
        w.expectedModRevision !== undefined &&
        kv &&
        kv.modRevision !== w.expectedModRevision
      ) {
        throw new ConflictError(w.key, w.expectedModRevision, kv.modRevision);
      }
    });
    throw new ConflictError(
      this.writes[0]?.key ?? '',
      undefined,
      undefined,
      'transaction preconditions changed while committing',
    );
  }
}

/**
 * Typed access to Calyx resources over any Datastore: validates on write (nothing is written
 * when validation fails) and on read.
 */
export class ResourceClient {
  constructor(readonly store: Datastore) {}

  validate<K extends Kind>(kind: K, input: InputOf<K> | ResourceOf<K>): ResourceOf<K> {
    const r = safeParseResource(kind, input);
    if (!r.ok) throw r.error;
    return r.value;
  }

  async get<K extends Kind>(kind: K, key: string): Promise<Stored<ResourceOf<K>> | undefined> {
    const kv = await this.store.get(key);
    return kv ? decodeResource(kind, kv) : undefined;
  }

  /** Every resource of the kind (all its prefixes at one revision). Invalid values throw. */
  async list<K extends Kind>(
    kind: K,
    opts: { prefix?: string } = {},
  ): Promise<{ items: Stored<ResourceOf<K>>[]; revision: Revision }> {
    const prefixes = opts.prefix ? [opts.prefix] : KINDS[kind].listPrefixes;
    const items: Stored<ResourceOf<K>>[] = [];
    let revision: Revision | undefined;
    for (const prefix of prefixes) {
      const r = await this.store.list(prefix, revision === undefined ? {} : { revision });
      revision ??= r.revision;
      for (const kv of r.items)
        if (kindOfKey(kv.key) === kind) items.push(decodeResource(kind, kv));
    }
    return { items, revision: revision ?? 0n };
  }

  async create<K extends Kind>(
    kind: K,
    input: InputOf<K>,
    opts: { lease?: LeaseId } = {},
  ): Promise<Stored<ResourceOf<K>>> {
    const v = this.validate(kind, input);
    const kv = await this.store.create(keyOf(kind, v), encodeResource(v), opts);
    return {
      key: kv.key,
      value: v,
      createRevision: kv.createRevision,
      modRevision: kv.modRevision,
      version: kv.version,
      lease: kv.lease,
    };
  }

  async update<K extends Kind>(
    kind: K,
    input: InputOf<K>,
    opts: { expectedModRevision?: Revision; lease?: LeaseId } = {},
  ): Promise<Stored<ResourceOf<K>>> {
    const v = this.validate(kind, input);
    const kv = await this.store.update(keyOf(kind, v), encodeResource(v), opts);
    return {
      key: kv.key,
      value: v,
      createRevision: kv.createRevision,
      modRevision: kv.modRevision,
      version: kv.version,
      lease: kv.lease,
    };
  }

  async put<K extends Kind>(
    kind: K,
    input: InputOf<K>,
    opts: { lease?: LeaseId } = {},
  ): Promise<Stored<ResourceOf<K>>> {
    const v = this.validate(kind, input);
    const kv = await this.store.put(keyOf(kind, v), encodeResource(v), opts);
    return {
      key: kv.key,
      value: v,
      createRevision: kv.createRevision,
      modRevision: kv.modRevision,
      version: kv.version,
      lease: kv.lease,
    };
  }

  async delete<K extends Kind>(
    kind: K,
    key: string,
    opts: { expectedModRevision?: Revision } = {},
  ): Promise<Stored<ResourceOf<K>>> {
    return decodeResource(kind, await this.store.delete(key, opts));
  }

  txn(): ResourceTxn {
    return new ResourceTxn(this);
  }
}

import {
  CompactedError,
  DatastoreError,
  FutureRevisionError,
  LeaseNotFoundError,
  UnavailableError,
  type Compare,
  type KeyValue,
  type Revision,
} from '@calyx/datastore';

/** etcd's mvccpb.KeyValue as the etcd3 client hands it over (int64 as decimal strings). */
export interface RawKeyValue {
  key: Buffer;
  create_revision: string;
  mod_revision: string;
  version: string;
  value: Buffer;
  lease: string;
}

/** The smallest key greater than every key with `prefix` (etcd's range_end for a prefix). */
export function prefixEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i]!++;
      return end.subarray(0, i + 1);
    }
  }
  // All 0xff: to the end of the keyspace.
  return Buffer.from([0]);
}

/** Maps keys between the contract's keyspace and a namespace in etcd's. */
export class Keyspace {
  private readonly ns: Buffer;

  constructor(namespace: string) {
    this.ns = Buffer.from(namespace, 'utf8');
  }

  encode(key: string): Buffer {
    return Buffer.concat([this.ns, Buffer.from(key, 'utf8')]);
  }

  decode(raw: Buffer): string {
    return raw.subarray(this.ns.length).toString('utf8');
  }

  toKeyValue(raw: RawKeyValue): KeyValue {
    const lease = BigInt(raw.lease || '0');
    return {
      key: this.decode(raw.key),
      value: raw.value.toString('utf8'),
      createRevision: BigInt(raw.create_revision),
      modRevision: BigInt(raw.mod_revision),
      version: BigInt(raw.version),
      lease: lease === 0n ? null : lease,
    };
  }
}

const RESULT = { '=': 'Equal', '!=': 'NotEqual', '<': 'Less', '>': 'Greater' } as const;

/**
 * One contract compare as etcd compares. `exists` has no etcd counterpart: a key exists iff
 * its create revision is not 0.
 */
export function toEtcdCompare(c: Compare, ks: Keyspace): Record<string, unknown> {
  const key = ks.encode(c.key);
  switch (c.target) {
    case 'exists':
      return {
        key,
        target: 'Create',
        result: c.value ? 'Greater' : 'Equal',
        create_revision: '0',
      };
    case 'value':
      return { key, target: 'Value', result: RESULT[c.op], value: Buffer.from(c.value, 'utf8') };
    case 'modRevision':
      return { key, target: 'Mod', result: RESULT[c.op], mod_revision: c.value.toString() };
    case 'createRevision':
      return { key, target: 'Create', result: RESULT[c.op], create_revision: c.value.toString() };
    case 'version':
      return { key, target: 'Version', result: RESULT[c.op], version: c.value.toString() };
  }
}

const COMPACTED = /required revision has been compacted/;
const FUTURE = /required revision is a future revision/;
const LEASE_GONE = /requested lease not found/;

/**
 * Turns an etcd3/gRPC error into the contract's typed errors where the meaning is known
 * (compacted, future revision, lease gone, unreachable); anything else is returned as is.
 */
export function mapError(
  e: unknown,
  ctx: { revision?: Revision; current?: Revision; compactRevision?: Revision; lease?: bigint },
): unknown {
  const msg = e instanceof Error ? e.message : String(e);
  if (COMPACTED.test(msg))
    return new CompactedError(ctx.revision ?? 0n, ctx.compactRevision ?? ctx.revision ?? 0n);
  if (FUTURE.test(msg)) return new FutureRevisionError(ctx.revision ?? 0n, ctx.current ?? 0n);
  if (LEASE_GONE.test(msg) && ctx.lease !== undefined) return new LeaseNotFoundError(ctx.lease);
  if (/permission denied|authentication failed|invalid auth token|user name not found/.test(msg))
    return new DatastoreError('PERMISSION_DENIED', `etcd refused: ${msg}`, { cause: e });
  const name = e instanceof Error ? e.constructor.name : '';
  // The client's circuit breaker stops calls to an endpoint that keeps failing.
  if ((e as { isBrokenCircuitError?: boolean } | null)?.isBrokenCircuitError)
    return new UnavailableError(`etcd unavailable: ${msg}`, { cause: e });
  if (
    /Unavailable|DeadlineExceeded|Cancelled|ClientRuntime/.test(name) ||
    /UNAVAILABLE|DEADLINE_EXCEEDED|No connection established|ECONNREFUSED|Failed to connect/.test(
      msg,
    )
  )
    return new UnavailableError(`etcd unavailable: ${msg}`, { cause: e });
  return e;
}

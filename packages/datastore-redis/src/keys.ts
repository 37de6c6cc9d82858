import { InvalidArgumentError } from '@calyx/datastore';

/** The namespace a store uses when none is given. */
export const DEFAULT_NAMESPACE = 'calyx';

const MAX_NAMESPACE = 128;
// Printable ASCII without space and without the braces that delimit a Redis Cluster hash tag.
const NAMESPACE = /^[\x21-\x7a\x7c\x7e]+$/;

/** A namespace is 1–128 printable ASCII characters without spaces, `{` or `}`. */
export function validateNamespace(namespace: string): void {
  if (
    typeof namespace !== 'string' ||
    namespace.length === 0 ||
    namespace.length > MAX_NAMESPACE ||
    !NAMESPACE.test(namespace)
  )
    throw new InvalidArgumentError(
      `Redis namespace ${JSON.stringify(namespace)} must be 1-${MAX_NAMESPACE} printable ASCII characters without spaces, '{' or '}'`,
    );
}

/**
 * The Redis keys of one store. Every one starts with the hash tag `{namespace}`, so they all
 * live in one Redis Cluster slot and one Lua script may touch any of them:
 *
 * | key                  | type   | holds                                                      |
 * | -------------------- | ------ | ---------------------------------------------------------- |
 * | `{ns}:meta`          | hash   | `rev` (store revision), `compact` (compacted revision), `lease` (last lease id) |
 * | `{ns}:idx`           | zset   | every live key (score 0), for ordered prefix ranges       |
 * | `{ns}:k:<key>`       | hash   | `v` value, `c` createRevision, `m` modRevision, `n` version, `l` lease (`0`: none) |
 * | `{ns}:log`           | stream | one entry per revision, id `<revision>-0`, field `e`: its events |
 * | `{ns}:leases`        | zset   | lease id → expiry (server time, ms)                        |
 * | `{ns}:lttl`          | hash   | lease id → granted TTL (s)                                 |
 * | `{ns}:lk:<lease id>` | set    | keys attached to the lease                                 |
 *
 * The Lua script derives every name from `meta` (its only declared key) exactly as here.
 */
export class StoreKeys {
  readonly tag: string;
  readonly meta: string;
  readonly index: string;
  readonly log: string;
  readonly leases: string;
  readonly leaseTtls: string;

  constructor(readonly namespace: string = DEFAULT_NAMESPACE) {
    validateNamespace(namespace);
    this.tag = `{${namespace}}`;
    this.meta = `${this.tag}:meta`;
    this.index = `${this.tag}:idx`;
    this.log = `${this.tag}:log`;
    this.leases = `${this.tag}:leases`;
    this.leaseTtls = `${this.tag}:lttl`;
  }

  /** The hash holding `key`'s value and revisions. */
  data(key: string): string {
    return `${this.tag}:k:${key}`;
  }

  /** The set of keys attached to a lease. */
  leaseKeys(id: bigint): string {
    return `${this.tag}:lk:${id}`;
  }
}

/**
 * The hash tag Redis Cluster hashes `key` by: the text between the first `{` and the next
 * `}` when it is not empty, else the whole key.
 */
export function hashTag(key: string): string {
  const open = key.indexOf('{');
  if (open < 0) return key;
  const close = key.indexOf('}', open + 1);
  if (close <= open + 1) return key;
  return key.slice(open + 1, close);
}

/** The smallest string after every string starting with `prefix` (keys are ASCII). */
export function prefixEnd(prefix: string): string {
  return prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1);
}

/** A key range as `ZRANGEBYLEX` bounds, and the test a key in it passes. */
export interface KeyRange {
  /** Inclusive lower bound (`[k`). */
  readonly min: string;
  /** Upper bound (`(k` or `[k`). */
  readonly max: string;
  readonly contains: (key: string) => boolean;
}

/** Every key starting with `prefix`. */
export function prefixRange(prefix: string): KeyRange {
  return {
    min: `[${prefix}`,
    max: `(${prefixEnd(prefix)}`,
    contains: (k) => k.startsWith(prefix),
  };
}

/** Exactly `key`. */
export function keyRange(key: string): KeyRange {
  return { min: `[${key}`, max: `[${key}`, contains: (k) => k === key };
}

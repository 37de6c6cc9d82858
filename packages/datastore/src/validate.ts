import { InvalidArgumentError, InvalidKeyError, ValueTooLargeError } from './errors.js';
import type { TxnOp, TxnRequest } from './types.js';

export const MAX_KEY_BYTES = 512;
/** 1 MiB: fits etcd's default 1.5 MiB request limit with room for the key and framing. */
export const MAX_VALUE_BYTES = 1024 * 1024;
export const MAX_TXN_OPS = 128;

const KEY = /^\/[\x21-\x7e]*$/;

/** Keys are `/`-rooted printable ASCII without spaces, at most 512 bytes, not ending in `/`. */
export function validateKey(key: string): void {
  if (typeof key !== 'string') throw new InvalidKeyError(String(key), 'not a string');
  if (key.length > MAX_KEY_BYTES)
    throw new InvalidKeyError(key, `longer than ${MAX_KEY_BYTES} bytes`);
  if (!KEY.test(key))
    throw new InvalidKeyError(
      key,
      "must start with '/' and hold only printable ASCII without spaces",
    );
  if (key.length > 1 && key.endsWith('/'))
    throw new InvalidKeyError(key, "must not end with '/' (that is a prefix)");
  if (key.includes('//')) throw new InvalidKeyError(key, "must not contain '//'");
}

/** Prefixes follow the key rules but may end with `/`. */
export function validatePrefix(prefix: string): void {
  if (typeof prefix !== 'string') throw new InvalidKeyError(String(prefix), 'not a string');
  if (prefix.length > MAX_KEY_BYTES)
    throw new InvalidKeyError(prefix, `longer than ${MAX_KEY_BYTES} bytes`);
  if (!KEY.test(prefix))
    throw new InvalidKeyError(
      prefix,
      "must start with '/' and hold only printable ASCII without spaces",
    );
  if (prefix.includes('//')) throw new InvalidKeyError(prefix, "must not contain '//'");
}

export function validateValue(key: string, value: string): void {
  if (typeof value !== 'string')
    throw new InvalidArgumentError(`value for '${key}' must be a string`);
  // Cheap bound first: UTF-8 is at most 3 bytes per UTF-16 unit.
  if (value.length * 3 > MAX_VALUE_BYTES) {
    const bytes = Buffer.byteLength(value, 'utf8');
    if (bytes > MAX_VALUE_BYTES) throw new ValueTooLargeError(key, bytes, MAX_VALUE_BYTES);
  }
}

export function validateRevision(name: string, rev: bigint | undefined): void {
  if (rev === undefined) return;
  if (typeof rev !== 'bigint' || rev < 0n)
    throw new InvalidArgumentError(`${name} must be a non-negative bigint`);
}

export function validateTtl(ttlSeconds: number): void {
  if (!Number.isInteger(ttlSeconds) || ttlSeconds < 1 || ttlSeconds > 9_000_000_000) {
    throw new InvalidArgumentError(
      `lease TTL must be a whole number of seconds >= 1 (got ${ttlSeconds})`,
    );
  }
}

function validateOps(ops: TxnOp[], branch: string): void {
  const written = new Set<string>();
  for (const op of ops) {
    validateKey(op.key);
    if (op.type === 'put') validateValue(op.key, op.value);
    if (op.type === 'put' || op.type === 'delete') {
      if (written.has(op.key))
        throw new InvalidArgumentError(`transaction ${branch} writes '${op.key}' twice`);
      written.add(op.key);
    } else if (op.type !== 'get') {
      throw new InvalidArgumentError(
        `unknown transaction op ${JSON.stringify((op as { type: unknown }).type)}`,
      );
    }
  }
}

/** Checks a whole transaction before anything is written. */
export function validateTxn(req: TxnRequest): void {
  if (!req || !Array.isArray(req.compares) || !Array.isArray(req.success)) {
    throw new InvalidArgumentError('a transaction needs compares and success arrays');
  }
  const failure = req.failure ?? [];
  if (req.compares.length + req.success.length + failure.length > MAX_TXN_OPS) {
    throw new InvalidArgumentError(`a transaction holds at most ${MAX_TXN_OPS} compares and ops`);
  }
  for (const c of req.compares) {
    validateKey(c.key);
    if (c.target === 'value') {
      if (c.op !== '=' && c.op !== '!=')
        throw new InvalidArgumentError(`value compares support '=' and '!=' only`);
      validateValue(c.key, c.value);
    } else if (c.target === 'exists') {
      if (typeof c.value !== 'boolean')
        throw new InvalidArgumentError('an exists compare needs a boolean');
    } else if (
      c.target === 'modRevision' ||
      c.target === 'createRevision' ||
      c.target === 'version'
    ) {
      if (typeof (c.value as unknown) !== 'bigint')
        throw new InvalidArgumentError(`${c.target} compares need a bigint`);
      if (!['=', '!=', '<', '>'].includes(c.op))
        throw new InvalidArgumentError(`unknown compare op '${c.op as string}'`);
    } else {
      throw new InvalidArgumentError(
        `unknown compare target ${JSON.stringify((c as unknown as { target: unknown }).target)}`,
      );
    }
  }
  validateOps(req.success, 'success');
  validateOps(failure, 'failure');
}

/** Whether `key` falls under `prefix` (string prefix, as etcd's range end = prefix + 1). */
export function hasPrefix(key: string, prefix: string): boolean {
  return key.startsWith(prefix);
}

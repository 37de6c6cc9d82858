import { CalyxError } from '@calyx/core';
import type { LeaseId, Revision } from './types.js';

export class DatastoreError extends CalyxError {}

export class NotFoundError extends DatastoreError {
  constructor(readonly key: string) {
    super('NOT_FOUND', `key '${key}' does not exist`);
  }
}

export class AlreadyExistsError extends DatastoreError {
  constructor(readonly key: string) {
    super('ALREADY_EXISTS', `key '${key}' already exists`);
  }
}

/** A compare-and-set lost: the key changed since the caller read it. */
export class ConflictError extends DatastoreError {
  constructor(
    readonly key: string,
    readonly expectedModRevision: Revision | undefined,
    readonly actualModRevision: Revision | undefined,
    message?: string,
  ) {
    super(
      'CONFLICT',
      message ??
        `key '${key}' changed: expected modRevision ${expectedModRevision ?? '?'}, found ${actualModRevision ?? 'none'}`,
    );
  }
}

/** The requested revision's history has been compacted away. */
export class CompactedError extends DatastoreError {
  constructor(
    readonly requestedRevision: Revision,
    readonly compactRevision: Revision,
  ) {
    super(
      'COMPACTED',
      `revision ${requestedRevision} has been compacted (compacted up to ${compactRevision})`,
    );
  }
}

/** A revision in the future. */
export class FutureRevisionError extends DatastoreError {
  constructor(
    readonly requestedRevision: Revision,
    readonly currentRevision: Revision,
  ) {
    super(
      'FUTURE_REVISION',
      `revision ${requestedRevision} is after the current revision ${currentRevision}`,
    );
  }
}

export class ClosedError extends DatastoreError {
  constructor() {
    super('CLOSED', 'the datastore is closed');
  }
}

export class InvalidKeyError extends DatastoreError {
  constructor(
    readonly key: string,
    readonly reason: string,
  ) {
    super(
      'INVALID_KEY',
      `invalid key ${JSON.stringify(key.length > 100 ? key.slice(0, 100) + '…' : key)}: ${reason}`,
    );
  }
}

export class InvalidArgumentError extends DatastoreError {
  constructor(message: string) {
    super('INVALID_ARGUMENT', message);
  }
}

export class ValueTooLargeError extends DatastoreError {
  constructor(
    readonly key: string,
    readonly bytes: number,
    readonly limit: number,
  ) {
    super('VALUE_TOO_LARGE', `value for '${key}' is ${bytes} bytes, over the ${limit}-byte limit`);
  }
}

export class LeaseNotFoundError extends DatastoreError {
  constructor(readonly leaseId: LeaseId) {
    super('LEASE_NOT_FOUND', `lease ${leaseId} does not exist (expired or revoked)`);
  }
}

/** The backend could not be reached; the operation may be retried. */
export class UnavailableError extends DatastoreError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('UNAVAILABLE', message, options);
  }
}

export class UnsupportedUrlError extends DatastoreError {
  constructor(
    readonly url: string,
    readonly supported: string[],
  ) {
    super(
      'UNSUPPORTED_URL',
      `no datastore backend for '${url}' (supported: ${supported.map((s) => `${s}://`).join(', ') || 'none'})`,
    );
  }
}

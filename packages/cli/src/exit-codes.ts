import { CalyxError } from '@calyx/core';
import {
  AlreadyExistsError,
  ClosedError,
  ConflictError,
  DatastoreError,
  InvalidArgumentError,
  InvalidKeyError,
  NotFoundError,
  UnavailableError,
  UnsupportedUrlError,
} from '@calyx/datastore';
import { KeyLayoutError, ValidationError } from '@calyx/model';

/** What `calyxctl` exits with. Scripts may rely on these. */
export const EXIT = {
  /** Done; for checks: nothing wrong. */
  OK: 0,
  /** The command failed, or a check found problems (ipam check, node status, partial apply). */
  FAILURE: 1,
  /** Bad usage, bad config, or invalid documents: nothing was written. */
  USAGE: 2,
  /** A named resource (or endpoint, host) does not exist. */
  NOT_FOUND: 3,
  /** The datastore could not be reached (or refused us). */
  UNAVAILABLE: 4,
  /** The datastore changed while we wrote (a compare-and-set lost): retrying may succeed. */
  CONFLICT: 5,
} as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** A mistake of the caller: bad arguments, bad config. Exit 2. */
export class UsageError extends CalyxError {
  constructor(message: string) {
    super('USAGE', message);
  }
}

/** Something the caller named is not there. Exit 3. */
export class ResourceMissingError extends CalyxError {
  constructor(message: string) {
    super('NOT_FOUND', message);
  }
}

/** The exit code for an error thrown while running a command. */
export function exitCodeOf(e: unknown): ExitCode {
  if (
    e instanceof UsageError ||
    e instanceof ValidationError ||
    e instanceof KeyLayoutError ||
    e instanceof InvalidArgumentError ||
    e instanceof InvalidKeyError ||
    e instanceof UnsupportedUrlError
  )
    return EXIT.USAGE;
  if (e instanceof ResourceMissingError || e instanceof NotFoundError) return EXIT.NOT_FOUND;
  if (
    e instanceof UnavailableError ||
    e instanceof ClosedError ||
    (e instanceof DatastoreError && e.code === 'PERMISSION_DENIED')
  )
    return EXIT.UNAVAILABLE;
  if (e instanceof ConflictError || e instanceof AlreadyExistsError) return EXIT.CONFLICT;
  return EXIT.FAILURE;
}

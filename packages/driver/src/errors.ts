import { CalyxError } from '@calyx/core';

export class ResourceNotFoundError extends CalyxError {
  constructor(
    readonly kind: string,
    readonly id: string,
  ) {
    super('RESOURCE_NOT_FOUND', `${kind} ${id} does not exist`);
  }
}

export class ResourceExistsError extends CalyxError {
  constructor(
    readonly kind: string,
    readonly id: string,
  ) {
    super('RESOURCE_EXISTS', `${kind} ${id} already exists`);
  }
}

/** A resource cannot be deleted (or changed that way) while others depend on it. */
export class ResourceInUseError extends CalyxError {
  constructor(
    readonly kind: string,
    readonly id: string,
    readonly usedBy: readonly string[],
  ) {
    super(
      'RESOURCE_IN_USE',
      `${kind} ${id} is in use by ${usedBy.slice(0, 5).join(', ')}${usedBy.length > 5 ? ` and ${usedBy.length - 5} more` : ''}`,
    );
  }
}

export class AddressInUseError extends CalyxError {
  constructor(
    readonly address: string,
    readonly holder: string,
  ) {
    super('ADDRESS_IN_USE', `address ${address} is already used by ${holder}`);
  }
}

/** A port cannot be bound to a host that is not registered, or whose agent is not alive. */
export class HostUnavailableError extends CalyxError {
  constructor(
    readonly host: string,
    reason: string,
  ) {
    super('HOST_UNAVAILABLE', `host ${host} cannot take ports: ${reason}`);
  }
}

/** A field that cannot change after creation. */
export class ImmutableFieldError extends CalyxError {
  constructor(
    readonly kind: string,
    readonly id: string,
    readonly field: string,
  ) {
    super('IMMUTABLE_FIELD', `${kind} ${id}: ${field} cannot be changed after creation`);
  }
}

/** Optimistic concurrency gave up after repeated conflicting writes. */
export class TooManyConflictsError extends CalyxError {
  constructor(what: string, attempts: number) {
    super('TOO_MANY_CONFLICTS', `${what}: still conflicting after ${attempts} attempts`);
  }
}

/** A port did not reach the awaited status in time. */
export class PortStatusTimeoutError extends CalyxError {
  constructor(
    readonly portId: string,
    readonly wanted: string,
    /** The last status seen (`unknown` when the agent never reported one). */
    readonly last: string,
    readonly lastReason: string,
    timeoutMs: number,
  ) {
    super(
      'PORT_STATUS_TIMEOUT',
      `port ${portId} is not ${wanted} after ${timeoutMs} ms (last status: ${last}${lastReason ? `, ${lastReason}` : ''})`,
    );
  }
}

/** One problem found while validating a resource. */
export interface ValidationIssue {
  /** Dotted path of the offending field (`fixedIps[0].ipAddress`), '' for the whole resource. */
  field: string;
  /** The offending value as the caller gave it (undefined when missing). */
  value: unknown;
  /** A predicate about the value: "is outside 10.0.0.0/24". */
  problem: string;
}

function showValue(v: unknown): string {
  if (v === undefined) return '(missing)';
  if (typeof v === 'string')
    return /^[\x21-\x7e]+$/.test(v) && v.length <= 80
      ? v
      : JSON.stringify(v.length > 80 ? `${v.slice(0, 77)}...` : v);
  if (typeof v === 'bigint') return `${v}`;
  try {
    const s = JSON.stringify(v);
    return s.length > 80 ? `${s.slice(0, 77)}...` : s;
  } catch {
    return String(v);
  }
}

export function formatIssue(i: ValidationIssue): string {
  if (i.field === '') return i.problem;
  return `${i.field} ${showValue(i.value)} ${i.problem}`;
}

/**
 * A resource failed validation. The message names the resource, the field and the bad value:
 * `Subnet s1: gatewayIp 10.0.1.1 is outside 10.0.0.0/24`.
 */
export class ValidationError extends Error {
  readonly code = 'VALIDATION';
  constructor(
    readonly kind: string,
    readonly resourceId: string | undefined,
    readonly issues: ValidationIssue[],
  ) {
    const head = `${kind}${resourceId ? ` ${resourceId}` : ''}`;
    super(`${head}: ${issues.map(formatIssue).join('; ')}`);
    this.name = 'ValidationError';
  }
}

/** A key does not belong to the Calyx layout, or names an unknown kind. */
export class KeyLayoutError extends Error {
  readonly code = 'KEY_LAYOUT';
  constructor(
    readonly key: string,
    reason: string,
  ) {
    super(`key '${key}': ${reason}`);
    this.name = 'KeyLayoutError';
  }
}

import type { CheckResult } from './health-server.js';

/** `/livez` of a program whose loops run until it is closed. */
export function livenessOf(closed: boolean): CheckResult {
  return closed ? { ok: false, reasons: ['closed'] } : { ok: true };
}

/**
 * `/readyz` of a syncing program: its datastore view is complete, it has programmed at least
 * once, and none of its programmers' last applies failed (`failures`: programmer → message).
 */
export function readinessOf(s: {
  closed: boolean;
  inSync: boolean;
  reconciles: number;
  failures: Readonly<Record<string, string | undefined>>;
  /** Further reasons it is not ready. */
  more?: readonly string[];
}): CheckResult {
  const reasons: string[] = [];
  if (s.closed) reasons.push('closed');
  if (!s.inSync) reasons.push('datastore view not in sync yet');
  if (s.reconciles === 0) reasons.push('not programmed yet');
  for (const [programmer, message] of Object.entries(s.failures))
    if (message !== undefined) reasons.push(`${programmer}: ${message}`);
  reasons.push(...(s.more ?? []));
  return { ok: reasons.length === 0, reasons };
}

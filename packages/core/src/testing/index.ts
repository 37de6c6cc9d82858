import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { describe } from 'vitest';

export interface Prerequisites {
  /** Needs uid 0 (network namespaces, iptables, daemons). */
  root?: boolean;
  /** Executables that must be on PATH (sbin directories included). */
  commands?: readonly string[];
}

function onPath(cmd: string): boolean {
  const dirs = [
    ...(process.env.PATH ?? '').split(delimiter),
    '/usr/local/sbin',
    '/usr/sbin',
    '/sbin',
  ];
  return dirs.some((d) => {
    try {
      accessSync(join(d, cmd), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** What is missing of `req` on this machine ([] when everything is there). */
export function missingPrerequisites(req: Prerequisites): string[] {
  const missing: string[] = [];
  if (req.root && process.getuid?.() !== 0) missing.push('root');
  for (const c of req.commands ?? []) if (!onPath(c)) missing.push(c);
  return missing;
}

/**
 * `describe` for integration tests. When prerequisites are missing it skips — except under
 * CI=true, where it fails loudly so a machine without them cannot pass by skipping.
 */
export function describeIntegration(name: string, req: Prerequisites, fn: () => void): void {
  const missing = missingPrerequisites(req);
  if (missing.length === 0) {
    describe(name, fn);
    return;
  }
  if (process.env.CI === 'true' || process.env.CALYX_REQUIRE_INTEGRATION === '1') {
    describe(name, () => {
      throw new Error(
        `integration prerequisites missing: ${missing.join(', ')} (CI=true: refusing to skip)`,
      );
    });
    return;
  }
  describe.skip(`${name} [skipped: missing ${missing.join(', ')}]`, fn);
}

/**
 * Polls `check` until it returns a value other than undefined/false, or fails after
 * `timeoutMs` with the last error or value. For conditions the system reaches on its own
 * (a route learned over BGP), not a substitute for awaiting an operation.
 */
export async function eventually<T>(
  check: () => Promise<T | undefined | false> | T | undefined | false,
  opts: { timeoutMs?: number; intervalMs?: number; what?: string } = {},
): Promise<T> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const interval = opts.intervalMs ?? 50;
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined && v !== false) return v;
      last = v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      const why = last instanceof Error ? last.message : JSON.stringify(last);
      throw new Error(
        `${opts.what ?? 'condition'} not reached within ${timeoutMs} ms (last: ${why})`,
      );
    }
    await new Promise((r) => setTimeout(r, interval));
  }
}

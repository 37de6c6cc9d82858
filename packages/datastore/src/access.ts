import { DatastoreError } from './errors.js';
import type { Datastore } from './types.js';

/**
 * The store answered and refused (wrong credentials, a role without the permission): retrying
 * cannot cure it, unlike a store that is not reachable (yet).
 */
export function isRefusal(e: unknown): e is DatastoreError {
  return e instanceof DatastoreError && e.code === 'PERMISSION_DENIED';
}

/**
 * One read at start that tells a store not reachable yet (boot order: the caller starts anyway
 * and keeps trying) from one that refuses the caller (thrown: a program should stop and say so
 * rather than retry forever). Resolves `unreachable` when there is no answer within
 * `timeoutMs` or the error is not a refusal.
 */
export async function checkAccess(
  store: Pick<Datastore, 'revision'>,
  opts: { timeoutMs?: number } = {},
): Promise<'reachable' | 'unreachable'> {
  const read = store.revision().then(() => 'reachable' as const);
  read.catch(() => undefined); // it may settle after the timeout
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      read,
      new Promise<'unreachable'>((resolve) => {
        timer = setTimeout(() => resolve('unreachable'), opts.timeoutMs ?? 2_000);
      }),
    ]);
  } catch (e) {
    if (isRefusal(e)) throw e;
    return 'unreachable';
  } finally {
    clearTimeout(timer);
  }
}

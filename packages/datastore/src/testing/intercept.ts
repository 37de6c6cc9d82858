import type { Datastore } from '../types.js';

/**
 * A datastore whose given methods are replaced (to count, delay, fail or inject a concurrent
 * write); every other call goes to `inner`, bound to it. The overrides get `inner` to delegate to.
 */
export function interceptDatastore(
  inner: Datastore,
  overrides: (inner: Datastore) => Partial<Datastore>,
): Datastore {
  const replaced = overrides(inner) as Record<PropertyKey, unknown>;
  return new Proxy(inner, {
    get(target, prop, receiver) {
      if (prop in replaced) return replaced[prop];
      const v = Reflect.get(target, prop, receiver) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

import { KINDS, ValidationError, type Kind, type ResourceOf } from '@calyx/model';
import { decodeResource, kindOfKey } from './resource-client.js';
import type { SyncerChange } from './syncer.js';

export interface CacheUpdate {
  /** Kinds that changed in this batch. */
  kinds: Set<Kind>;
  /** Keys whose value failed validation (kept out of the cache). */
  invalid: { key: string; error: ValidationError }[];
}

/**
 * Typed resources kept current from Syncer changes, indexed by resource id (name for hosts
 * and pools). A value that fails validation is reported and left out, never crashes the
 * consumer.
 */
export class ResourceCache {
  private readonly byKey = new Map<string, { kind: Kind; id: string }>();
  private readonly byKind = new Map<
    Kind,
    Map<string, { key: string; value: unknown; modRevision: bigint }>
  >();

  apply(changes: readonly SyncerChange[]): CacheUpdate {
    const kinds = new Set<Kind>();
    const invalid: CacheUpdate['invalid'] = [];
    for (const c of changes) {
      const kind = kindOfKey(c.key);
      if (!kind) continue;
      if (c.type === 'delete') {
        if (this.remove(c.key)) kinds.add(kind);
        continue;
      }
      let value: unknown;
      try {
        value = decodeResource(kind, c.kv).value;
      } catch (e) {
        if (!(e instanceof ValidationError)) throw e;
        invalid.push({ key: c.key, error: e });
        if (this.remove(c.key)) kinds.add(kind);
        continue;
      }
      const id = String((value as Record<string, unknown>)[KINDS[kind].idField]);
      const prev = this.byKey.get(c.key);
      if (prev && prev.id !== id) this.remove(c.key);
      this.byKey.set(c.key, { kind, id });
      let m = this.byKind.get(kind);
      if (!m) this.byKind.set(kind, (m = new Map()));
      m.set(id, { key: c.key, value, modRevision: c.kv.modRevision });
      kinds.add(kind);
    }
    return { kinds, invalid };
  }

  private remove(key: string): boolean {
    const at = this.byKey.get(key);
    if (!at) return false;
    this.byKey.delete(key);
    const m = this.byKind.get(at.kind);
    // An endpoint moved between hosts may already live under its new key.
    if (m?.get(at.id)?.key === key) m.delete(at.id);
    return true;
  }

  /** Resources of a kind by id. The map is live: copy it to keep a snapshot. */
  map<K extends Kind>(kind: K): ReadonlyMap<string, ResourceOf<K>> {
    const m = this.byKind.get(kind);
    const out = new Map<string, ResourceOf<K>>();
    if (m) for (const [id, e] of m) out.set(id, e.value as ResourceOf<K>);
    return out;
  }

  get<K extends Kind>(kind: K, id: string): ResourceOf<K> | undefined {
    return this.byKind.get(kind)?.get(id)?.value as ResourceOf<K> | undefined;
  }

  /** The revision that last changed a resource (its record's modRevision). */
  modRevisionOf(kind: Kind, id: string): bigint | undefined {
    return this.byKind.get(kind)?.get(id)?.modRevision;
  }

  size(kind: Kind): number {
    return this.byKind.get(kind)?.size ?? 0;
  }
}

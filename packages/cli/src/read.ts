import { KINDS, ValidationError, type Kind, type ResourceOf } from '@calyx/model';
import {
  ResourceCache,
  decodeResource,
  kindOfKey,
  type Datastore,
  type Revision,
  type Stored,
} from '@calyx/datastore';
import { viewOf, type ResourceView } from '@calyx/calc';

/** A stored value that fails its schema: reported, never fatal to a read. */
export interface InvalidRecord {
  key: string;
  error: ValidationError;
}

/**
 * Every resource of a kind, at one revision, decoded one by one: a value that fails
 * validation is set aside in `invalid` instead of failing the whole read.
 */
export async function listKind<K extends Kind>(
  store: Datastore,
  kind: K,
  opts: { revision?: Revision } = {},
): Promise<{ items: Stored<ResourceOf<K>>[]; invalid: InvalidRecord[]; revision: Revision }> {
  const items: Stored<ResourceOf<K>>[] = [];
  const invalid: InvalidRecord[] = [];
  let revision = opts.revision;
  for (const prefix of KINDS[kind].listPrefixes) {
    const r = await store.list(prefix, revision === undefined ? {} : { revision });
    revision ??= r.revision;
    for (const kv of r.items) {
      if (kindOfKey(kv.key) !== kind) continue;
      try {
        items.push(decodeResource(kind, kv));
      } catch (e) {
        if (!(e instanceof ValidationError)) throw e;
        invalid.push({ key: kv.key, error: e });
      }
    }
  }
  return { items, invalid, revision: revision ?? 0n };
}

/** The prefixes an agent follows: what calc needs to compute any host's state. */
const VIEW_KINDS: readonly Kind[] = [
  'Network',
  'Subnet',
  'SecurityGroup',
  'Endpoint',
  'Host',
  'BgpConfiguration',
  'BgpPeer',
  'IpPool',
];

/**
 * Reads, at one revision, everything an agent syncs into its cache and returns calc's view of
 * it (as the agent builds it), with the values that failed validation (left out, as the agent
 * leaves them out).
 */
export async function readView(
  store: Datastore,
): Promise<{ view: ResourceView; invalid: InvalidRecord[]; revision: Revision }> {
  const cache = new ResourceCache();
  const invalid: InvalidRecord[] = [];
  let revision: Revision | undefined;
  const prefixes = [...new Set(VIEW_KINDS.flatMap((k) => KINDS[k].listPrefixes))];
  for (const prefix of prefixes) {
    const r = await store.list(prefix, revision === undefined ? {} : { revision });
    revision ??= r.revision;
    const update = cache.apply(r.items.map((kv) => ({ type: 'put' as const, key: kv.key, kv })));
    invalid.push(...update.invalid);
  }
  return { view: viewOf(cache), invalid, revision: revision ?? 0n };
}

import { KIND_NAMES, KINDS, keys, type Kind, type ResourceOf } from '@calyx/model';
import type { ResourceClient, Stored } from '@calyx/datastore';
import { UsageError } from './exit-codes.js';

/** What a kind may be called on the command line (case, '-' and '_' ignored). */
const ALIASES: Record<Kind, readonly string[]> = {
  Network: ['networks', 'net'],
  Subnet: ['subnets'],
  SecurityGroup: ['securitygroups', 'sg', 'sgs'],
  Endpoint: ['endpoints', 'ep', 'eps', 'port', 'ports'],
  EndpointLocation: ['endpointlocations'],
  Host: ['hosts', 'node', 'nodes'],
  BgpConfiguration: ['bgpconfigurations', 'bgpconfig', 'bgpconfigs'],
  BgpPeer: ['bgppeers'],
  IpPool: ['ippools', 'pool', 'pools'],
  IpamBlock: ['ipamblocks', 'block', 'blocks'],
  IpamHandle: ['ipamhandles', 'handle', 'handles'],
  BlockAffinity: ['blockaffinities', 'affinity', 'affinities'],
  EndpointStatus: ['endpointstatuses'],
  HostStatus: ['hoststatuses'],
};

const normalise = (s: string): string => s.toLowerCase().replace(/[-_]/g, '');

const BY_NAME = new Map<string, Kind>();
for (const k of KIND_NAMES) {
  BY_NAME.set(normalise(k), k);
  for (const a of ALIASES[k]) BY_NAME.set(a, k);
}

/** Kinds written by calyxctl alongside another kind, never on their own. */
export const DERIVED_KINDS: ReadonlySet<Kind> = new Set<Kind>(['EndpointLocation']);

/** Kinds that `get all` (a backup that `apply -f` restores) leaves out: derived and status records. */
export const NOT_IN_ALL: ReadonlySet<Kind> = new Set<Kind>([
  'EndpointLocation',
  'EndpointStatus',
  'HostStatus',
]);

/** The kind a command-line word names; UsageError listing the kinds otherwise. */
export function resolveKind(word: string): Kind {
  const k = BY_NAME.get(normalise(word));
  if (!k) throw new UsageError(`'${word}' is not a kind (kinds: ${KIND_NAMES.join(', ')})`);
  return k;
}

/** A kind named in a document: the canonical name, or an alias. */
export function kindOfDocument(word: unknown): Kind | undefined {
  return typeof word === 'string' ? BY_NAME.get(normalise(word)) : undefined;
}

/** The field that names a resource of the kind (`id`, `name`, `cidr`, …). */
export function idOf(kind: Kind, r: unknown): string {
  return String((r as Record<string, unknown>)[KINDS[kind].idField]);
}

/** The host a resource belongs to, for kinds that have one. */
export function hostOf(r: unknown): string | null | undefined {
  const h = (r as Record<string, unknown>).host;
  return typeof h === 'string' || h === null ? h : undefined;
}

/** Kinds whose key follows from the id alone. */
const KEY_OF_ID: Partial<Record<Kind, (id: string) => string>> = {
  Network: keys.network,
  Subnet: keys.subnet,
  SecurityGroup: keys.securityGroup,
  EndpointLocation: keys.endpointLocation,
  Host: keys.host,
  BgpConfiguration: keys.bgpConfiguration,
  BgpPeer: keys.bgpPeer,
  IpPool: keys.ipPool,
  IpamBlock: keys.ipamBlock,
  IpamHandle: keys.ipamHandle,
  HostStatus: keys.hostStatus,
};

/**
 * The stored resources of a kind that `id` names: by their key when the id alone gives it,
 * else by looking (an endpoint through its location record, then every endpoint; an affinity
 * or endpoint status by `host/id` or by id among all of them).
 */
export async function findById<K extends Kind>(
  client: ResourceClient,
  kind: K,
  id: string,
): Promise<Stored<ResourceOf<K>>[]> {
  const direct = async (key: string): Promise<Stored<ResourceOf<K>>[]> => {
    const s = await client.get(kind, key);
    return s ? [s] : [];
  };
  const among = async (): Promise<Stored<ResourceOf<K>>[]> =>
    (await client.list(kind)).items.filter((s) => idOf(kind, s.value) === id);
  const byKey = KEY_OF_ID[kind];
  if (byKey) return direct(byKey(id));
  const slash = id.indexOf('/');
  switch (kind as Kind) {
    case 'Endpoint': {
      const loc = await client.get('EndpointLocation', keys.endpointLocation(id));
      if (loc) {
        const found = await direct(keys.endpoint(loc.value.host, id));
        if (found.length) return found;
      }
      // No (or a stale) location record: look at every endpoint.
      return among();
    }
    case 'BlockAffinity':
      // `host/cidr` names one; a bare CIDR matches whichever host has it.
      return slash > 0 && id.indexOf('/', slash + 1) > 0
        ? direct(keys.blockAffinity(id.slice(0, slash), id.slice(slash + 1)))
        : among();
    case 'EndpointStatus':
      return slash > 0
        ? direct(keys.endpointStatus(id.slice(0, slash), id.slice(slash + 1)))
        : among();
    default:
      throw new Error(`internal: no lookup by id for ${kind}`);
  }
}

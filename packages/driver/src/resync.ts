import { isDeepStrictEqual } from 'node:util';
import { CalyxError, silentLogger, throwIfAborted, type Logger } from '@calyx/core';
import {
  MAX_TXN_OPS,
  type Compare,
  type Datastore,
  type KeyValue,
  type ResourceClient,
  type Revision,
  type TxnOp,
} from '@calyx/datastore';
import {
  endpointAddressIssues,
  formatIssue,
  keys,
  prefixes,
  safeParseResource,
  securityGroupReferenceIssues,
  subnetOverlapIssues,
  ValidationError,
  type Endpoint,
  type EndpointInput,
  type IpamBlock,
  type IpamHandle,
  type IpPool,
  type Kind,
  type Network,
  type NetworkInput,
  type SecurityGroup,
  type SecurityGroupInput,
  type Subnet,
  type SubnetInput,
  type ValidationIssue,
} from '@calyx/model';
import {
  AddressAllocatedError,
  blockPrefixFor,
  endpointOfHandle,
  heldAddresses,
  portHandle,
  repairIpam,
  subnetPool,
  subnetPoolName,
  type Allocation,
  type HeldAddress,
  type Ipam,
  type IpamRepairResult,
} from '@calyx/ipam';
import {
  enclosingCidr,
  firstAddress,
  formatCidr,
  lastAddress,
  parseCidr,
  parseIP,
} from '@calyx/netaddr';

// Resync: make the datastore match the orchestrator's full truth. Validate the whole snapshot,
// read the datastore once (one revision), diff, then write only the differences as
// compare-and-set operations batched into transactions, so a write that lands after our read
// is never overwritten: its key no longer has the revision we read, the item is skipped and
// reported. Addresses are brought in line through IPAM in the order the driver uses
// (allocate before the port is written, release after).

/** The key that serialises subnet creation (the driver's overlap guard). */
export const SUBNET_GUARD = '/calyx/v1/guard/subnets';

/**
 * Compares + operations per transaction by default: the datastore contract's maximum less
 * room for a wrapper's own compares (a FencedDatastore adds a compare and a failure read).
 */
export const DEFAULT_RESYNC_TXN_OPS = MAX_TXN_OPS - 8;

/** Everything the orchestrator knows. Port fixed IPs are complete (subnet and address). */
export interface OrchestratorSnapshot {
  networks: NetworkInput[];
  subnets: SubnetInput[];
  securityGroups: SecurityGroupInput[];
  ports: EndpointInput[];
}

export interface ResyncTarget {
  client: ResourceClient;
  ipam: Ipam;
  logger?: Logger;
}

export interface ResyncOptions {
  signal?: AbortSignal;
  /** Compares + operations per transaction (default 120, at most MAX_TXN_OPS). */
  maxOpsPerTxn?: number;
  /** Transactions (and IPAM blocks) worked on at once. Default 16. */
  concurrency?: number;
  /** Plan only: the report says what would change; nothing is written. */
  dryRun?: boolean;
  /** Called as planned changes complete (resource items and address operations). */
  onProgress?: (done: number, total: number) => void;
}

export type ResyncKind = 'Network' | 'Subnet' | 'SecurityGroup' | 'Port' | 'IpPool';

export interface ResyncChanges {
  created: string[];
  updated: string[];
  deleted: string[];
}

/** A change not made because the datastore changed after resync read it (or a dependency did). */
export interface ResyncSkip {
  kind: ResyncKind;
  id: string;
  action: 'create' | 'update' | 'delete';
  reason: string;
}

export interface ResyncIpamReport extends IpamRepairResult {
  /** Allocations left alone because their port was written concurrently. */
  skipped: string[];
}

export interface ResyncReport {
  dryRun: boolean;
  /** The revision resync read the datastore at. */
  readRevision: Revision;
  networks: ResyncChanges;
  subnets: ResyncChanges;
  securityGroups: ResyncChanges;
  /** `updated` includes moved ports; `rebound` lists those. */
  ports: ResyncChanges & { rebound: string[] };
  /** The subnets' own IPAM pools (`subnet-<id>`), written with their subnets. */
  ipPools: ResyncChanges;
  skipped: ResyncSkip[];
  ipam: ResyncIpamReport;
  /** Hosts ports are bound to that have no Host record (written anyway: agents register). */
  unregisteredHosts: string[];
  counts: {
    snapshot: { networks: number; subnets: number; securityGroups: number; ports: number };
    datastore: { networks: number; subnets: number; securityGroups: number; ports: number };
    /** Snapshot resources already stored exactly. */
    unchanged: number;
    /** Resource changes made (or planned, in a dry run). */
    changed: number;
    skipped: number;
    /** Transactions resync committed or tried itself (IPAM's own are not counted). */
    transactions: number;
  };
  durationMs: number;
}

export interface SnapshotIssue extends ValidationIssue {
  kind: 'Network' | 'Subnet' | 'SecurityGroup' | 'Port' | 'Snapshot';
  id: string | undefined;
}

/** The snapshot is invalid (schemas, references, duplicates, overlaps): nothing was written. */
export class SnapshotInvalidError extends CalyxError {
  constructor(readonly issues: readonly SnapshotIssue[]) {
    const shown = issues
      .slice(0, 5)
      .map((i) => `${i.kind}${i.id !== undefined ? ` ${i.id}` : ''}: ${formatIssue(i)}`);
    super(
      'SNAPSHOT_INVALID',
      `orchestrator snapshot rejected, nothing written: ${shown.join('; ')}${issues.length > 5 ? ` (and ${issues.length - 5} more)` : ''}`,
    );
  }
}

// ------------------------------------------------------------------ validation

interface Desired {
  networks: Map<string, Network>;
  subnets: Map<string, Subnet>;
  groups: Map<string, SecurityGroup>;
  ports: Map<string, Endpoint>;
}

type Validatable = 'Network' | 'Subnet' | 'SecurityGroup' | 'Endpoint';

function validateSnapshot(client: ResourceClient, snap: OrchestratorSnapshot): Desired {
  const issues: SnapshotIssue[] = [];
  const collect = <T extends { id: string }>(
    kind: Validatable,
    label: SnapshotIssue['kind'],
    field: keyof OrchestratorSnapshot,
  ): Map<string, T> => {
    const out = new Map<string, T>();
    const inputs: unknown = (snap as Partial<OrchestratorSnapshot> | null)?.[field];
    if (!Array.isArray(inputs)) {
      issues.push({
        kind: 'Snapshot',
        id: undefined,
        field,
        value: inputs,
        problem: 'must be an array',
      });
      return out;
    }
    inputs.forEach((input, i) => {
      let v: T;
      try {
        v = client.validate(kind, input as never) as unknown as T;
      } catch (e) {
        if (!(e instanceof ValidationError)) throw e;
        issues.push(...e.issues.map((x) => ({ ...x, kind: label, id: e.resourceId })));
        return;
      }
      if (out.has(v.id))
        issues.push({
          kind: label,
          id: v.id,
          field: 'id',
          value: v.id,
          problem: `is listed twice (${field}[${i}])`,
        });
      else out.set(v.id, v);
    });
    return out;
  };
  const networks = collect<Network>('Network', 'Network', 'networks');
  const subnets = collect<Subnet>('Subnet', 'Subnet', 'subnets');
  const groups = collect<SecurityGroup>('SecurityGroup', 'SecurityGroup', 'securityGroups');
  const ports = collect<Endpoint>('Endpoint', 'Port', 'ports');

  for (const s of subnets.values())
    if (!networks.has(s.networkId))
      issues.push({
        kind: 'Subnet',
        id: s.id,
        field: 'networkId',
        value: s.networkId,
        problem: 'is not a network of the snapshot',
      });
  issues.push(...overlapIssues(subnets));
  const groupIds = new Set(groups.keys());
  for (const g of groups.values())
    for (const i of securityGroupReferenceIssues(g, groupIds))
      issues.push({ ...i, kind: 'SecurityGroup', id: g.id });

  const addressOwner = new Map<string, string>();
  const interfaceOwner = new Map<string, string>();
  for (const p of ports.values()) {
    const add = (field: string, value: unknown, problem: string) =>
      issues.push({ kind: 'Port', id: p.id, field, value, problem });
    if (!networks.has(p.networkId))
      add('networkId', p.networkId, 'is not a network of the snapshot');
    else for (const i of endpointAddressIssues(p, subnets)) add(i.field, i.value, i.problem);
    p.securityGroupIds.forEach((g, i) => {
      if (!groupIds.has(g))
        add(`securityGroupIds[${i}]`, g, 'is not a security group of the snapshot');
    });
    p.fixedIps.forEach((f, i) => {
      const other = addressOwner.get(f.ipAddress);
      if (other !== undefined)
        add(`fixedIps[${i}].ipAddress`, f.ipAddress, `is also port ${other}'s`);
      else addressOwner.set(f.ipAddress, p.id);
    });
    if (p.host !== null) {
      const k = `${p.host}/${p.interfaceName}`;
      const other = interfaceOwner.get(k);
      if (other !== undefined)
        add('interfaceName', p.interfaceName, `is also port ${other}'s on host ${p.host}`);
      else interfaceOwner.set(k, p.id);
    }
  }
  if (issues.length) throw new SnapshotInvalidError(issues);
  return { networks, subnets, groups, ports };
}

/** One address space: no two subnets overlap (sorted sweep, the model's wording). */
function overlapIssues(subnets: ReadonlyMap<string, Subnet>): SnapshotIssue[] {
  const ranges = [...subnets.values()]
    .map((s) => {
      const c = parseCidr(s.cidr);
      return { s, family: c.family, start: firstAddress(c).value, end: lastAddress(c).value };
    })
    .sort((a, b) => a.family - b.family || (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
  const out: SnapshotIssue[] = [];
  let widest: (typeof ranges)[number] | undefined;
  for (const r of ranges) {
    if (widest && widest.family === r.family && r.start <= widest.end)
      out.push({
        kind: 'Subnet',
        id: r.s.id,
        field: 'cidr',
        value: r.s.cidr,
        problem: `overlaps subnet ${widest.s.id} (${widest.s.cidr})`,
      });
    if (!widest || widest.family !== r.family || r.end > widest.end) widest = r;
  }
  return out;
}

// ------------------------------------------------------------------ reading

interface Raw {
  key: string;
  value: string;
  modRevision: Revision;
}

interface Current {
  revision: Revision;
  networks: Map<string, Raw>;
  subnets: Map<string, Raw>;
  groups: Map<string, Raw>;
  /** Endpoint records by port id (more than one only after a crash or a bug). */
  endpoints: Map<string, Raw[]>;
  locations: Map<string, Raw>;
  pools: Map<string, Raw>;
  blocks: IpamBlock[];
  /** Blocks that fail validation: left alone, reported. */
  badBlocks: string[];
  handles: IpamHandle[];
  hosts: Set<string>;
  guard: Raw | undefined;
}

const raw = (kv: KeyValue): Raw => ({ key: kv.key, value: kv.value, modRevision: kv.modRevision });

/** The id a key ends with, for keys directly under `prefix` (the key layout puts it last). */
function idUnder(prefix: string, key: string): string | undefined {
  const rest = key.slice(prefix.length);
  return rest && !rest.includes('/') ? rest : undefined;
}

async function readCurrent(store: Datastore): Promise<Current> {
  const first = await store.list(prefixes.network);
  const at = { revision: first.revision };
  const [subnets, groups, bound, unbound, locations, pools, blocks, handles, hosts, guard] =
    await Promise.all([
      store.list(prefixes.subnet, at),
      store.list(prefixes.securityGroup, at),
      store.list(prefixes.boundEndpoints, at),
      store.list(prefixes.unboundEndpoints, at),
      store.list(prefixes.endpointLocation, at),
      store.list(prefixes.ipPool, at),
      store.list(prefixes.ipamBlock, at),
      store.list(prefixes.ipamHandle, at),
      store.list(prefixes.host, at),
      store.get(SUBNET_GUARD, at),
    ]);
  const byId = (prefix: string, items: KeyValue[]): Map<string, Raw> => {
    const m = new Map<string, Raw>();
    for (const kv of items) {
      const id = idUnder(prefix, kv.key);
      if (id !== undefined) m.set(id, raw(kv));
    }
    return m;
  };
  const endpoints = new Map<string, Raw[]>();
  for (const kv of [...bound.items, ...unbound.items]) {
    // host/<host>/endpoint/<id> or unbound/endpoint/<id>
    const parts = kv.key.split('/');
    const id = parts.at(-1);
    if (
      parts.at(-2) !== 'endpoint' ||
      parts.length !== (kv.key.startsWith(prefixes.unboundEndpoints) ? 6 : 7) ||
      !id
    )
      continue;
    const list = endpoints.get(id);
    if (list) list.push(raw(kv));
    else endpoints.set(id, [raw(kv)]);
  }
  const parsedBlocks = blocks.items.map((kv) => safeParseResource('IpamBlock', safeJson(kv.value)));
  return {
    revision: first.revision,
    networks: byId(prefixes.network, first.items),
    subnets: byId(prefixes.subnet, subnets.items),
    groups: byId(prefixes.securityGroup, groups.items),
    endpoints,
    locations: byId(prefixes.endpointLocation, locations.items),
    pools: byId(prefixes.ipPool, pools.items),
    blocks: parsedBlocks.flatMap((b) => (b.ok ? [b.value] : [])),
    badBlocks: blocks.items.flatMap((kv, i) => (parsedBlocks[i]!.ok ? [] : [kv.key])),
    handles: handles.items.flatMap((kv) => {
      const h = safeJson(kv.value) as IpamHandle | undefined;
      return h && typeof h.handleId === 'string' && typeof h.blocks === 'object' ? [h] : [];
    }),
    hosts: new Set(hosts.items.flatMap((kv) => idUnder(prefixes.host, kv.key) ?? [])),
    guard: guard ? raw(guard) : undefined,
  };
}

// ------------------------------------------------------------------ planning

type Section = 'networks' | 'subnets' | 'securityGroups' | 'ports' | 'ipPools';
type Action = ResyncSkip['action'];

interface Item {
  kind: ResyncKind;
  id: string;
  action: Action;
  compares: Compare[];
  ops: TxnOp[];
  /** Report lines once committed. */
  changes: { section: Section; id: string; action: Action }[];
  /** Creates a subnet or changes its CIDR: also compares and bumps the overlap guard. */
  guarded?: boolean;
  rebound?: boolean;
}

const createOp = (it: Item, key: string, value: string): void => {
  it.compares.push({ key, target: 'exists', value: false });
  it.ops.push({ type: 'put', key, value });
};
const updateOp = (it: Item, cur: Raw, value: string): void => {
  it.compares.push({ key: cur.key, target: 'modRevision', op: '=', value: cur.modRevision });
  it.ops.push({ type: 'put', key: cur.key, value });
};
const deleteOp = (it: Item, cur: Raw): void => {
  it.compares.push({ key: cur.key, target: 'modRevision', op: '=', value: cur.modRevision });
  it.ops.push({ type: 'delete', key: cur.key });
};

const newItem = (kind: ResyncKind, id: string, action: Action, section: Section): Item => ({
  kind,
  id,
  action,
  compares: [],
  ops: [],
  changes: [{ section, id, action }],
});

/** One kind's changes: creates and updates (in one list), deletes, and what already matches. */
interface Planned {
  upserts: Item[];
  deletes: Item[];
  unchanged: number;
}

/** Whether a stored value is the desired resource: same encoding, or equal once validated. */
function sameAs(kind: Kind, stored: string, desired: unknown, encoded: string): boolean {
  if (stored === encoded) return true;
  let parsed: unknown;
  try {
    parsed = JSON.parse(stored);
  } catch {
    return false;
  }
  const r = safeParseResource(kind, parsed);
  return r.ok && isDeepStrictEqual(r.value, desired);
}

/** Creates and updates of one simple kind, and deletes of what the snapshot lacks. */
function planSimple<T extends { id: string }>(
  kind: 'Network' | 'SecurityGroup',
  section: Section,
  desired: ReadonlyMap<string, T>,
  current: ReadonlyMap<string, Raw>,
  keyOf: (id: string) => string,
): Planned {
  const upserts: Item[] = [];
  let unchanged = 0;
  for (const d of desired.values()) {
    const encoded = JSON.stringify(d);
    const cur = current.get(d.id);
    if (!cur) {
      const it = newItem(kind, d.id, 'create', section);
      createOp(it, keyOf(d.id), encoded);
      upserts.push(it);
    } else if (!sameAs(kind, cur.value, d, encoded)) {
      const it = newItem(kind, d.id, 'update', section);
      updateOp(it, cur, encoded);
      upserts.push(it);
    } else unchanged++;
  }
  const deletes: Item[] = [];
  for (const [id, cur] of current) {
    if (desired.has(id)) continue;
    const it = newItem(kind, id, 'delete', section);
    deleteOp(it, cur);
    deletes.push(it);
  }
  return { upserts, deletes, unchanged };
}

function planSubnets(desired: ReadonlyMap<string, Subnet>, cur: Current): Planned {
  const upserts: Item[] = [];
  let unchanged = 0;
  const wantedPools = new Set<string>();
  for (const s of desired.values()) {
    const encoded = JSON.stringify(s);
    const stored = cur.subnets.get(s.id);
    const pool = subnetPool(s);
    wantedPools.add(pool.name);
    const storedPool = cur.pools.get(pool.name);
    const it = newItem('Subnet', s.id, stored ? 'update' : 'create', 'subnets');
    it.changes = [];
    if (!stored) {
      createOp(it, keys.subnet(s.id), encoded);
      it.changes.push({ section: 'subnets', id: s.id, action: 'create' });
      it.guarded = true;
    } else if (!sameAs('Subnet', stored.value, s, encoded)) {
      updateOp(it, stored, encoded);
      it.changes.push({ section: 'subnets', id: s.id, action: 'update' });
      it.guarded = cidrOf(stored.value) !== s.cidr;
    }
    if (!storedPool) {
      createOp(it, keys.ipPool(pool.name), JSON.stringify(pool));
      it.changes.push({ section: 'ipPools', id: pool.name, action: 'create' });
    } else {
      // Only what the subnet decides; other settings of the pool (NAT, advertising) are kept.
      const old = safeParseResource('IpPool', safeJson(storedPool.value));
      const next: IpPool = old.ok
        ? { ...old.value, cidr: pool.cidr, blockSize: pool.blockSize, subnetId: pool.subnetId }
        : pool;
      if (!old.ok || !isDeepStrictEqual(next, old.value)) {
        updateOp(it, storedPool, JSON.stringify(next));
        it.changes.push({ section: 'ipPools', id: pool.name, action: 'update' });
      }
    }
    if (it.ops.length) upserts.push(it);
    else unchanged++;
  }
  const deletes: Item[] = [];
  for (const [id, stored] of cur.subnets) {
    if (desired.has(id)) continue;
    const it = newItem('Subnet', id, 'delete', 'subnets');
    deleteOp(it, stored);
    const pool = cur.pools.get(subnetPoolName(id));
    if (pool && !wantedPools.has(subnetPoolName(id))) {
      deleteOp(it, pool);
      it.changes.push({ section: 'ipPools', id: subnetPoolName(id), action: 'delete' });
      wantedPools.add(subnetPoolName(id)); // handled here
    }
    deletes.push(it);
  }
  // Subnet pools whose subnet is gone and not in the snapshot.
  for (const [name, stored] of cur.pools) {
    if (wantedPools.has(name)) continue;
    const r = safeParseResource('IpPool', safeJson(stored.value));
    if (!r.ok || r.value.subnetId === null) continue; // not a subnet's pool: not ours
    const it = newItem('IpPool', name, 'delete', 'ipPools');
    deleteOp(it, stored);
    deletes.push(it);
  }
  return { upserts, deletes, unchanged };
}

function safeJson(s: string): unknown {
  try {
    return JSON.parse(s);
  } catch {
    return undefined;
  }
}

function cidrOf(storedSubnet: string): string | undefined {
  const r = safeParseResource('Subnet', safeJson(storedSubnet));
  return r.ok ? r.value.cidr : undefined;
}

function planPorts(desired: ReadonlyMap<string, Endpoint>, cur: Current): Planned {
  const upserts: Item[] = [];
  let unchanged = 0;
  for (const p of desired.values()) {
    const key = keys.endpoint(p.host, p.id);
    const encoded = JSON.stringify(p);
    const records = cur.endpoints.get(p.id) ?? [];
    const loc = cur.locations.get(p.id);
    const locValue = JSON.stringify({ id: p.id, host: p.host });
    const here = records.find((r) => r.key === key);
    const it = newItem('Port', p.id, records.length || loc ? 'update' : 'create', 'ports');
    if (!here) createOp(it, key, encoded);
    else if (!sameAs('Endpoint', here.value, p, encoded)) updateOp(it, here, encoded);
    for (const r of records) if (r !== here) deleteOp(it, r);
    if (!loc) createOp(it, keys.endpointLocation(p.id), locValue);
    else if (!sameAs('EndpointLocation', loc.value, { id: p.id, host: p.host }, locValue))
      updateOp(it, loc, locValue);
    it.rebound = !here && records.length > 0;
    if (it.ops.length) upserts.push(it);
    else unchanged++;
  }
  const deletes: Item[] = [];
  const orphans = new Set([...cur.endpoints.keys(), ...cur.locations.keys()]);
  for (const id of orphans) {
    if (desired.has(id)) continue;
    const it = newItem('Port', id, 'delete', 'ports');
    for (const r of cur.endpoints.get(id) ?? []) deleteOp(it, r);
    const loc = cur.locations.get(id);
    if (loc) deleteOp(it, loc);
    deletes.push(it);
  }
  return { upserts, deletes, unchanged };
}

// ------------------------------------------------------------------ IPAM planning

type Held = HeldAddress;

interface AssignTask {
  port: Endpoint;
  index: number;
  ip: string;
  subnet: Subnet;
  block: string;
}

interface ReleaseTask {
  portId: string;
  handleId: string;
  block: string;
  /** Absent: every address of the handle (a deleted port's: `ips`). */
  ip?: string;
  ips?: string[];
  sequence?: number;
}

interface IpamPlan {
  /** Allocations of ports resync deletes, by port id. */
  ofDeleted: Map<string, ReleaseTask>;
  /** Allocations of ports that exist nowhere (a crash between allocation and write). */
  leftovers: ReleaseTask[];
  /** Addresses a snapshot port no longer has, by port id. */
  stale: Map<string, ReleaseTask[]>;
  /** Missing addresses, and those held by another snapshot port (assigned after it lets go). */
  assign: AssignTask[];
  deferred: AssignTask[];
  unrepairable: string[];
  /** Handle records disagree with the blocks: repairIpam runs at the end. */
  handleIssues: number;
}

function planIpam(desired: Desired, cur: Current): IpamPlan {
  const held = new Map<string, Held>();
  const byHandle = new Map<string, Held[]>();
  const counts = new Map<string, Map<string, number>>();
  for (const h of heldAddresses(cur.blocks)) {
    held.set(h.ip, h);
    if (h.handleId === null) continue;
    const list = byHandle.get(h.handleId);
    if (list) list.push(h);
    else byHandle.set(h.handleId, [h]);
    const perBlock = counts.get(h.handleId) ?? new Map<string, number>();
    perBlock.set(h.block, (perBlock.get(h.block) ?? 0) + 1);
    counts.set(h.handleId, perBlock);
  }
  let handleIssues = 0;
  const recorded = new Set<string>();
  for (const h of cur.handles) {
    recorded.add(h.handleId);
    const actual = counts.get(h.handleId);
    const entries = Object.entries(h.blocks);
    if (
      !actual ||
      actual.size !== entries.length ||
      entries.some(([block, n]) => actual.get(block) !== n)
    )
      handleIssues++;
  }
  for (const handleId of counts.keys()) if (!recorded.has(handleId)) handleIssues++;

  const plan: IpamPlan = {
    ofDeleted: new Map(),
    leftovers: [],
    stale: new Map(),
    assign: [],
    deferred: [],
    unrepairable: cur.badBlocks.map((k) => `IPAM block ${k} is not valid: left alone`),
    handleIssues,
  };
  for (const [handleId, list] of byHandle) {
    const portId = endpointOfHandle(handleId);
    if (portId === undefined) continue; // not a port's: not ours to judge
    const port = desired.ports.get(portId);
    if (!port) {
      if (cur.endpoints.has(portId) || cur.locations.has(portId))
        plan.ofDeleted.set(portId, {
          portId,
          handleId,
          block: list[0]!.block,
          ips: list.map((h) => h.ip),
        });
      else
        for (const h of list)
          plan.leftovers.push({ portId, handleId, block: h.block, ip: h.ip, ...seqOf(h) });
      continue;
    }
    const mine = new Set(port.fixedIps.map((f) => f.ipAddress));
    const stale = list
      .filter((h) => !mine.has(h.ip))
      .map((h) => ({ portId, handleId, block: h.block, ip: h.ip, ...seqOf(h) }));
    if (stale.length) plan.stale.set(portId, stale);
  }
  for (const p of desired.ports.values()) {
    p.fixedIps.forEach((f, index) => {
      const h = held.get(f.ipAddress);
      const mine = portHandle(p.id);
      if (h?.handleId === mine) return;
      const subnet = desired.subnets.get(f.subnetId)!;
      const block = formatCidr(enclosingCidr(parseIP(f.ipAddress), blockPrefixFor(subnet.cidr)));
      const task: AssignTask = { port: p, index, ip: f.ipAddress, subnet, block };
      const holder = h === undefined ? undefined : h.handleId;
      const holderPort = holder ? endpointOfHandle(holder) : undefined;
      if (h === undefined) plan.assign.push(task);
      else if (holderPort === undefined)
        plan.unrepairable.push(
          `${f.ipAddress} of port ${p.id} is held by ${holder ?? 'an allocation without a handle'}`,
        );
      else if (desired.ports.has(holderPort)) plan.deferred.push(task);
      else plan.assign.push(task); // its holder is deleted or a leftover: released first
    });
  }
  return plan;
}

/** A release names the allocation's sequence, so an address reused meanwhile stays. */
const seqOf = (h: { sequence?: number | undefined }): { sequence?: number } =>
  h.sequence === undefined ? {} : { sequence: h.sequence };

// ------------------------------------------------------------------ execution

/** Runs groups of tasks (same key: one after the other) on at most `lanes` workers. */
async function inLanes<T>(
  tasks: readonly T[],
  keyOf: (t: T) => string,
  lanes: number,
  fn: (t: T) => Promise<void>,
  signal: AbortSignal | undefined,
): Promise<void> {
  const groups = new Map<string, T[]>();
  for (const t of tasks) {
    const k = keyOf(t);
    const g = groups.get(k);
    if (g) g.push(t);
    else groups.set(k, [t]);
  }
  const queue = [...groups.values()];
  let next = 0;
  let failed = false;
  const results = await Promise.allSettled(
    Array.from({ length: Math.min(lanes, queue.length) }, async () => {
      while (!failed && next < queue.length) {
        const group = queue[next++]!;
        for (const t of group) {
          if (failed) return;
          throwIfAborted(signal);
          try {
            await fn(t);
          } catch (e) {
            failed = true;
            throw e;
          }
        }
      }
    }),
  );
  for (const r of results) if (r.status === 'rejected') throw r.reason;
}

/** Commits items in transactions of many items; a failed transaction is retried item by item. */
class Committer {
  transactions = 0;
  private guard: { modRevision: Revision | undefined; count: number };

  constructor(
    private readonly store: Datastore,
    private readonly maxOps: number,
    private readonly concurrency: number,
    private readonly signal: AbortSignal | undefined,
    private readonly done: (n: number) => void,
    guard: Raw | undefined,
    /** Why a guarded item cannot be written now that subnets changed (undefined: retry). */
    private readonly overlapCheck: (item: Item) => Promise<string | undefined>,
  ) {
    this.guard = { modRevision: guard?.modRevision, count: Number(guard?.value ?? 0) || 0 };
  }

  /** Returns the reason of each item that was not committed. */
  async commit(items: readonly Item[]): Promise<Map<Item, string>> {
    const skipped = new Map<Item, string>();
    const guarded = items.filter((i) => i.guarded);
    const plain = items.filter((i) => !i.guarded);
    await inLanes(
      this.batches(plain, 0),
      (b) => String(b.index),
      this.concurrency,
      (b) => this.commitBatch(b.items, skipped),
      this.signal,
    );
    // Guarded items share one key: their transactions go one after the other.
    for (const b of this.batches(guarded, 2)) {
      throwIfAborted(this.signal);
      await this.commitBatch(b.items, skipped);
    }
    return skipped;
  }

  private batches(items: readonly Item[], reserve: number): { index: number; items: Item[] }[] {
    const out: { index: number; items: Item[] }[] = [];
    let cur: Item[] = [];
    let size = reserve;
    for (const it of items) {
      const n = it.compares.length + it.ops.length;
      if (cur.length && size + n > this.maxOps) {
        out.push({ index: out.length, items: cur });
        cur = [];
        size = reserve;
      }
      cur.push(it);
      size += n;
    }
    if (cur.length) out.push({ index: out.length, items: cur });
    return out;
  }

  private guardParts(): { compare: Compare; op: TxnOp } {
    return {
      compare:
        this.guard.modRevision === undefined
          ? { key: SUBNET_GUARD, target: 'exists', value: false }
          : { key: SUBNET_GUARD, target: 'modRevision', op: '=', value: this.guard.modRevision },
      op: { type: 'put', key: SUBNET_GUARD, value: String(this.guard.count + 1) },
    };
  }

  private async txn(items: readonly Item[], withReads: boolean) {
    const compares = items.flatMap((i) => i.compares);
    const success = items.flatMap((i) => i.ops);
    const guarded = items.some((i) => i.guarded);
    if (guarded) {
      const g = this.guardParts();
      compares.push(g.compare);
      success.push(g.op);
    }
    this.transactions++;
    const r = await this.store.txn({
      compares,
      success,
      ...(withReads
        ? { failure: compares.map((c) => ({ type: 'get' as const, key: c.key })) }
        : {}),
    });
    if (r.succeeded && guarded)
      this.guard = { modRevision: r.revision, count: this.guard.count + 1 };
    return { r, compares };
  }

  private async commitBatch(items: Item[], skipped: Map<Item, string>): Promise<void> {
    if ((await this.txn(items, false)).r.succeeded) {
      this.done(items.length);
      return;
    }
    // Subnets created meanwhile: every guarded item is checked against them before retrying.
    if (items.some((i) => i.guarded) && (await this.guardMoved()))
      for (const it of items) {
        const overlap = it.guarded ? await this.overlapCheck(it) : undefined;
        if (overlap !== undefined) skipped.set(it, overlap);
      }
    for (const it of items) {
      throwIfAborted(this.signal);
      const reason = skipped.get(it) ?? (await this.commitOne(it));
      if (reason !== undefined) skipped.set(it, reason);
      this.done(1);
    }
  }

  /** Re-reads the guard; true (and remembered) when it is not what resync last saw. */
  private async guardMoved(): Promise<boolean> {
    const kv = await this.store.get(SUBNET_GUARD);
    if (kv?.modRevision === this.guard.modRevision) return false;
    this.guard = { modRevision: kv?.modRevision, count: Number(kv?.value ?? 0) || 0 };
    return true;
  }

  /** One item alone; returns why it could not be committed, or undefined. */
  private async commitOne(it: Item): Promise<string | undefined> {
    for (let attempt = 0; attempt < 3; attempt++) {
      const { r, compares } = await this.txn([it], true);
      if (r.succeeded) return undefined;
      let guardMoved = false;
      const reasons: string[] = [];
      compares.forEach((c, i) => {
        const res = r.results[i];
        const kv = res?.type === 'get' ? res.kv : undefined;
        if (c.key === SUBNET_GUARD) {
          if (kv?.modRevision !== this.guard.modRevision) {
            guardMoved = true;
            this.guard = { modRevision: kv?.modRevision, count: Number(kv?.value ?? 0) || 0 };
          }
        } else if (c.target === 'exists' && kv) reasons.push(`${c.key} was created concurrently`);
        else if (c.target === 'modRevision' && !kv)
          reasons.push(`${c.key} was deleted concurrently`);
        else if (c.target === 'modRevision' && kv && kv.modRevision !== c.value)
          reasons.push(
            `${c.key} changed concurrently (read at modRevision ${c.value}, now ${kv.modRevision})`,
          );
      });
      if (reasons.length) return reasons.join('; ');
      if (!guardMoved) return 'the transaction lost a race it cannot name';
      // Subnets changed concurrently: the item may still be written if it overlaps none of them.
      const overlap = await this.overlapCheck(it);
      if (overlap !== undefined) return overlap;
    }
    return 'subnets kept changing concurrently';
  }
}

function emptyChanges(): ResyncChanges {
  return { created: [], updated: [], deleted: [] };
}

interface Plan {
  networks: Planned;
  groups: Planned;
  subnets: Planned;
  ports: Planned;
  ipam: IpamPlan;
}

function newReport(dryRun: boolean, desired: Desired, cur: Current, plan: Plan): ResyncReport {
  const unchanged = [plan.networks, plan.groups, plan.subnets, plan.ports].reduce(
    (n, p) => n + p.unchanged,
    0,
  );
  const hosts = [...desired.ports.values()].flatMap((p) =>
    p.host !== null && !cur.hosts.has(p.host) ? [p.host] : [],
  );
  return {
    dryRun,
    readRevision: cur.revision,
    networks: emptyChanges(),
    subnets: emptyChanges(),
    securityGroups: emptyChanges(),
    ports: { ...emptyChanges(), rebound: [] },
    ipPools: emptyChanges(),
    skipped: [],
    ipam: {
      released: [],
      assigned: [],
      handlesDeleted: [],
      handlesRewritten: [],
      unrepairable: [...plan.ipam.unrepairable],
      skipped: [],
    },
    unregisteredHosts: [...new Set(hosts)].sort(),
    counts: {
      snapshot: {
        networks: desired.networks.size,
        subnets: desired.subnets.size,
        securityGroups: desired.groups.size,
        ports: desired.ports.size,
      },
      datastore: {
        networks: cur.networks.size,
        subnets: cur.subnets.size,
        securityGroups: cur.groups.size,
        ports: new Set([...cur.endpoints.keys(), ...cur.locations.keys()]).size,
      },
      unchanged,
      changed: 0,
      skipped: 0,
      transactions: 0,
    },
    durationMs: 0,
  };
}

/** One resync, phase by phase, after the plan. */
class ResyncRun {
  private readonly committer: Committer;
  private readonly items: Item[];
  private readonly total: number;
  private done = 0;
  /** Creates that did not land, by kind: what depends on them is not written. */
  private readonly notCreated = {
    Network: new Set<string>(),
    Subnet: new Set<string>(),
    SecurityGroup: new Set<string>(),
  };
  /** Ports not written because a dependency is missing. */
  private readonly blocked = new Map<string, string>();
  /** Addresses this run assigned, by port (released again if the port's write lost). */
  private readonly assignedNow = new Map<string, Allocation[]>();

  constructor(
    private readonly target: ResyncTarget,
    private readonly opts: ResyncOptions & { lanes: number; maxOps: number },
    private readonly desired: Desired,
    private readonly cur: Current,
    private readonly plan: Plan,
    readonly report: ResyncReport,
  ) {
    this.items = [plan.networks, plan.groups, plan.subnets, plan.ports].flatMap((p) => [
      ...p.upserts,
      ...p.deletes,
    ]);
    const ip = plan.ipam;
    this.total =
      this.items.length +
      ip.ofDeleted.size +
      ip.leftovers.length +
      [...ip.stale.values()].reduce((n, l) => n + l.length, 0) +
      ip.assign.length +
      ip.deferred.length;
    const replaced = new Set(plan.subnets.deletes.map((d) => d.id));
    this.committer = new Committer(
      target.client.store,
      opts.maxOps,
      opts.lanes,
      opts.signal,
      (n) => this.progress(n),
      cur.guard,
      (it) => this.overlapNow(it, replaced),
    );
  }

  private progress(n: number): void {
    this.done += n;
    this.opts.onProgress?.(Math.min(this.done, this.total), this.total);
  }

  private record(it: Item): void {
    for (const c of it.changes) {
      const s = this.report[c.section];
      (c.action === 'create' ? s.created : c.action === 'update' ? s.updated : s.deleted).push(
        c.id,
      );
    }
    if (it.rebound) this.report.ports.rebound.push(it.id);
    this.report.counts.changed++;
  }

  private skip(it: Item, reason: string): void {
    this.report.skipped.push({ kind: it.kind, id: it.id, action: it.action, reason });
    this.report.counts.skipped++;
  }

  /** The report of a dry run: every planned change, as if it landed. */
  planOnly(): ResyncReport {
    for (const it of this.items) this.record(it);
    const ip = this.plan.ipam;
    this.report.ipam.released.push(
      ...[...ip.ofDeleted.values()].flatMap((t) => t.ips ?? []),
      ...ip.leftovers.map((t) => t.ip!),
      ...[...ip.stale.values()].flat().map((t) => t.ip!),
    );
    this.report.ipam.assigned.push(...[...ip.assign, ...ip.deferred].map((t) => t.ip));
    if (ip.handleIssues)
      this.report.ipam.unrepairable.push(
        `${ip.handleIssues} handle record(s) disagree with the blocks (repaired when not a dry run)`,
      );
    this.progress(this.total);
    return this.report;
  }

  /**
   * Commits items (after `precheck`, which names why an item must not be written); returns
   * the ids whose change did not land.
   */
  private async phase(
    items: readonly Item[],
    precheck: (it: Item) => string | undefined = () => undefined,
  ): Promise<Set<string>> {
    throwIfAborted(this.opts.signal);
    const failed = new Set<string>();
    const ready = items.filter((it) => {
      const why = precheck(it);
      if (why === undefined) return true;
      this.skip(it, why);
      failed.add(it.id);
      this.progress(1);
      return false;
    });
    const lost = await this.committer.commit(ready);
    for (const it of ready) {
      const why = lost.get(it);
      if (why === undefined) this.record(it);
      else {
        this.skip(it, why);
        failed.add(it.id);
      }
    }
    this.report.counts.transactions = this.committer.transactions;
    return failed;
  }

  private missing(kind: keyof ResyncRun['notCreated'], id: string, what: string) {
    return this.notCreated[kind].has(id) ? `${what} ${id} was not created` : undefined;
  }

  /** Why a port cannot be written: something it refers to was not created. */
  private portDependency(p: Endpoint): string | undefined {
    return (
      this.missing('Network', p.networkId, 'network') ??
      p.fixedIps.map((f) => this.missing('Subnet', f.subnetId, 'subnet')).find(Boolean) ??
      p.securityGroupIds
        .map((g) => this.missing('SecurityGroup', g, 'security group'))
        .find(Boolean)
    );
  }

  /** Creates that did not land and whose resource is still absent (not written meanwhile). */
  private async noteNotCreated(
    kind: keyof ResyncRun['notCreated'],
    failed: Set<string>,
    stored: ReadonlyMap<string, Raw>,
  ): Promise<void> {
    const keyOf = { Network: keys.network, Subnet: keys.subnet, SecurityGroup: keys.securityGroup }[
      kind
    ];
    for (const id of failed)
      if (!stored.has(id) && !(await this.target.client.store.get(keyOf(id))))
        this.notCreated[kind].add(id);
  }

  /** A guarded subnet against the subnets stored now (except those resync replaces). */
  private async overlapNow(it: Item, replaced: ReadonlySet<string>): Promise<string | undefined> {
    const s = this.desired.subnets.get(it.id);
    if (!s) return undefined;
    const now = (await this.target.client.store.list(prefixes.subnet)).items.flatMap((kv) => {
      const r = safeParseResource('Subnet', safeJson(kv.value));
      return r.ok && !replaced.has(r.value.id) ? [r.value] : [];
    });
    const clash = subnetOverlapIssues(s, now)[0];
    return clash ? `cidr ${s.cidr} ${clash.problem}, written concurrently` : undefined;
  }

  async run(): Promise<ResyncReport> {
    const { plan, cur } = this;
    // 1. Networks, security groups, subnets (with their pools): creates and updates.
    await this.noteNotCreated('Network', await this.phase(plan.networks.upserts), cur.networks);
    await this.noteNotCreated('SecurityGroup', await this.phase(plan.groups.upserts), cur.groups);
    const subnetFailed = await this.phase(plan.subnets.upserts, (it) =>
      this.missing('Network', this.desired.subnets.get(it.id)!.networkId, 'network'),
    );
    await this.noteNotCreated('Subnet', subnetFailed, cur.subnets);
    for (const it of plan.ports.upserts) {
      const why = this.portDependency(this.desired.ports.get(it.id)!);
      if (why !== undefined) this.blocked.set(it.id, why);
    }
    // 2. Ports the orchestrator no longer has, then their addresses (as deletePort does).
    await this.releaseDeleted(await this.phase(plan.ports.deletes));
    // 3. Allocations of ports that exist nowhere (a crash between allocation and write).
    await this.releaseLeftovers();
    // 4. Addresses of the ports to write, before they are written (as createPort does).
    await this.assign(plan.ipam.assign);
    // 5. Ports: creates, updates, moves between hosts.
    const portFailed = await this.phase(plan.ports.upserts, (it) => this.blocked.get(it.id));
    // 6. Addresses ports no longer have (after the write, as updatePort does); then those
    //    they gave up for another port of the snapshot.
    await this.releaseStale(portFailed);
    await this.assign(plan.ipam.deferred.filter((t) => !portFailed.has(t.port.id)));
    this.progress(plan.ipam.deferred.filter((t) => portFailed.has(t.port.id)).length);
    // 7. A port whose write lost to a concurrent one keeps only what that write lists.
    await this.compensate(portFailed);
    // 8. Deletes, in reverse dependency order, checked against what uses them now.
    await this.deleteUnused();
    // 9. Handle records that disagreed with the blocks (nothing resync itself causes).
    if (plan.ipam.handleIssues) await this.repairHandles();
    return this.report;
  }

  private lanes<T extends { block: string }>(tasks: readonly T[], fn: (t: T) => Promise<void>) {
    return inLanes(
      tasks,
      (t) => t.block,
      this.opts.lanes,
      async (t) => {
        await fn(t);
        this.progress(1);
      },
      this.opts.signal,
    );
  }

  private released(ips: string[]): void {
    this.report.ipam.released.push(...ips);
  }

  private async releaseDeleted(failed: ReadonlySet<string>): Promise<void> {
    const tasks = [...this.plan.ipam.ofDeleted.values()];
    this.progress(tasks.filter((t) => failed.has(t.portId)).length);
    await this.lanes(
      tasks.filter((t) => !failed.has(t.portId)),
      async (t) => this.released(await this.target.ipam.releaseByHandle(t.handleId)),
    );
  }

  private async releaseLeftovers(): Promise<void> {
    await this.lanes(this.plan.ipam.leftovers, async (t) => {
      // Unless the port appeared meanwhile (a createPort that allocated before our read).
      if (await this.target.client.store.get(keys.endpointLocation(t.portId)))
        this.report.ipam.skipped.push(
          `${t.ip} of port ${t.portId}: the port was written concurrently`,
        );
      else
        this.released(
          await this.target.ipam.release([{ ip: t.ip!, handleId: t.handleId, ...seqOf(t) }]),
        );
    });
  }

  /**
   * Assigns addresses, one address of each port per round (a handle never races itself);
   * a round goes through `assignMany`: a transaction per block chunk, not per address.
   */
  private async assign(tasks: readonly AssignTask[]): Promise<void> {
    const ready = tasks.filter((t) => !this.blocked.has(t.port.id));
    this.progress(tasks.length - ready.length);
    const rounds = Math.max(0, ...ready.map((t) => t.index + 1));
    for (let i = 0; i < rounds; i++) {
      throwIfAborted(this.opts.signal);
      const round = ready.filter((t) => t.index === i);
      const results = await this.target.ipam.assignMany(
        round.map((t) => ({
          subnet: t.subnet,
          ip: t.ip,
          handleId: portHandle(t.port.id),
          host: t.port.host,
        })),
        { concurrency: this.opts.lanes },
      );
      round.forEach((t, k) => {
        const a = results[k]!;
        if (a instanceof AddressAllocatedError) {
          this.report.ipam.unrepairable.push(
            `${t.ip} of port ${t.port.id} is held by ${a.holder ?? 'an allocation without a handle'}`,
          );
          return;
        }
        if (a instanceof Error) throw a;
        this.report.ipam.assigned.push(a.ip);
        const list = this.assignedNow.get(t.port.id);
        if (list) list.push(a);
        else this.assignedNow.set(t.port.id, [a]);
      });
      this.progress(round.length);
    }
  }

  private async releaseStale(failed: ReadonlySet<string>): Promise<void> {
    const go: ReleaseTask[] = [];
    for (const [id, tasks] of this.plan.ipam.stale) {
      if (!failed.has(id) && !this.blocked.has(id)) {
        go.push(...tasks);
        continue;
      }
      for (const t of tasks)
        this.report.ipam.skipped.push(`${t.ip} of port ${id}: the port was not written`);
      this.progress(tasks.length);
    }
    await this.lanes(go, async (t) =>
      this.released(
        await this.target.ipam.release([{ ip: t.ip!, handleId: t.handleId, ...seqOf(t) }]),
      ),
    );
  }

  private async compensate(failed: ReadonlySet<string>): Promise<void> {
    const { client, ipam } = this.target;
    for (const id of failed) {
      const mine = this.assignedNow.get(id);
      if (!mine?.length) continue;
      const loc = await client.store.get(keys.endpointLocation(id));
      const host = loc ? (safeJson(loc.value) as { host?: string | null }).host : undefined;
      const now = host !== undefined ? await client.store.get(keys.endpoint(host, id)) : undefined;
      const listed = now ? (safeJson(now.value) as Partial<Endpoint>).fixedIps : undefined;
      const keep = new Set((listed ?? []).map((f) => f.ipAddress));
      const drop = mine.filter((a) => !keep.has(a.ip));
      if (drop.length)
        this.released(
          await ipam.release(
            drop.map((a) => ({ ip: a.ip, handleId: a.handleId, sequence: a.sequence })),
          ),
        );
    }
  }

  private async deleteUnused(): Promise<void> {
    const { subnets, groups, networks } = this.plan;
    if (!subnets.deletes.length && !groups.deletes.length && !networks.deletes.length) return;
    // A port or subnet written concurrently may use what the snapshot no longer has.
    const users = await readUsers(this.target.client.store);
    const subnetFailed = await this.phase(subnets.deletes, (it) => {
      if (it.kind === 'IpPool') return undefined;
      const p = users.ports.find((e) => e.fixedIps.some((f) => f.subnetId === it.id));
      if (p) return `in use by port ${p.id}`;
      const b = users.blocks.find((x) => x.pool === subnetPoolName(it.id) && x.used);
      return b ? `IPAM block ${b.cidr} still holds addresses (run ipam repair)` : undefined;
    });
    const leaving = new Set(groups.deletes.map((g) => g.id));
    await this.phase(groups.deletes, (it) => {
      const p = users.ports.find((e) => e.securityGroupIds.includes(it.id));
      if (p) return `in use by port ${p.id}`;
      const g = users.groups.find((x) => !leaving.has(x.id) && x.remoteGroupIds.includes(it.id));
      return g ? `in use by security group ${g.id}` : undefined;
    });
    const gone = new Set(
      subnets.deletes
        .filter((d) => d.kind === 'Subnet' && !subnetFailed.has(d.id))
        .map((d) => d.id),
    );
    await this.phase(networks.deletes, (it) => {
      const p = users.ports.find((e) => e.networkId === it.id);
      if (p) return `in use by port ${p.id}`;
      const s = users.subnets.find((x) => x.networkId === it.id && !gone.has(x.id));
      return s ? `in use by subnet ${s.id}` : undefined;
    });
  }

  private async repairHandles(): Promise<void> {
    const r = await repairIpam(this.target.ipam);
    const mine = this.report.ipam;
    mine.released.push(...r.released);
    mine.assigned.push(...r.assigned);
    mine.handlesDeleted.push(...r.handlesDeleted);
    mine.handlesRewritten.push(...r.handlesRewritten);
    mine.unrepairable.push(...r.unrepairable);
  }
}

/** What uses networks, subnets and security groups now (read again before deleting them). */
async function readUsers(store: Datastore) {
  const [bound, unbound, subnets, groups, blocks] = await Promise.all([
    store.list(prefixes.boundEndpoints),
    store.list(prefixes.unboundEndpoints),
    store.list(prefixes.subnet),
    store.list(prefixes.securityGroup),
    store.list(prefixes.ipamBlock),
  ]);
  const parse = <T>(kvs: KeyValue[]): Partial<T>[] =>
    kvs.flatMap((kv) => {
      const v = safeJson(kv.value);
      return v && typeof v === 'object' ? [v as Partial<T>] : [];
    });
  return {
    ports: parse<Endpoint>([...bound.items, ...unbound.items]).map((e) => ({
      id: String(e.id),
      networkId: e.networkId,
      fixedIps: e.fixedIps ?? [],
      securityGroupIds: e.securityGroupIds ?? [],
    })),
    subnets: parse<Subnet>(subnets.items).map((s) => ({
      id: String(s.id),
      networkId: s.networkId,
    })),
    groups: parse<SecurityGroup>(groups.items).map((g) => ({
      id: String(g.id),
      remoteGroupIds: (g.rules ?? []).flatMap((r) => (r.remoteGroupId ? [r.remoteGroupId] : [])),
    })),
    blocks: parse<IpamBlock>(blocks.items).map((b) => ({
      cidr: String(b.cidr),
      pool: b.pool,
      used: (b.allocations ?? []).some((a) => a !== null),
    })),
  };
}

/**
 * Makes the datastore match the orchestrator's snapshot: creates what is missing, fixes what
 * differs, deletes what the orchestrator no longer has (networks, subnets with their IPAM
 * pools, security groups, ports with their location records), then brings IPAM in line with
 * the ports. The snapshot is validated in full first (SnapshotInvalidError: nothing written).
 * Every create is create-if-absent and every update or delete compares the revision read, so
 * a concurrent newer write is never overwritten: that item is skipped and reported.
 */
export async function resyncDatastore(
  target: ResyncTarget,
  snapshot: OrchestratorSnapshot,
  opts: ResyncOptions = {},
): Promise<ResyncReport> {
  const t0 = performance.now();
  throwIfAborted(opts.signal);
  const desired = validateSnapshot(target.client, snapshot);
  const cur = await readCurrent(target.client.store);
  throwIfAborted(opts.signal);
  const plan: Plan = {
    networks: planSimple('Network', 'networks', desired.networks, cur.networks, keys.network),
    groups: planSimple(
      'SecurityGroup',
      'securityGroups',
      desired.groups,
      cur.groups,
      keys.securityGroup,
    ),
    subnets: planSubnets(desired.subnets, cur),
    ports: planPorts(desired.ports, cur),
    ipam: planIpam(desired, cur),
  };
  const dryRun = opts.dryRun ?? false;
  const run = new ResyncRun(
    target,
    {
      ...opts,
      lanes: Math.max(1, opts.concurrency ?? 16),
      maxOps: Math.min(Math.max(opts.maxOpsPerTxn ?? DEFAULT_RESYNC_TXN_OPS, 8), MAX_TXN_OPS),
    },
    desired,
    cur,
    plan,
    newReport(dryRun, desired, cur, plan),
  );
  const report = dryRun ? run.planOnly() : await run.run();
  report.durationMs = performance.now() - t0;
  const { counts, ipam } = report;
  (target.logger ?? silentLogger).child({ component: 'resync' }).info(
    {
      revision: String(cur.revision),
      dryRun,
      changed: counts.changed,
      unchanged: counts.unchanged,
      skipped: counts.skipped,
      released: ipam.released.length,
      assigned: ipam.assigned.length,
      ms: Math.round(report.durationMs),
    },
    'resync done',
  );
  return report;
}

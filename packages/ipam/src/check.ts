import {
  keys,
  prefixes,
  type Endpoint,
  type IpamBlock,
  type IpamHandle,
  type Subnet,
} from '@calyx/model';
import { KINDS } from '@calyx/model';
import { heldAddresses } from './block.js';
import { AddressAllocatedError, type Ipam } from './ipam.js';

/** The handle IPAM uses for a port's addresses. */
export function portHandle(endpointId: string): string {
  return `port:${endpointId}`;
}

export function endpointOfHandle(handleId: string): string | undefined {
  return handleId.startsWith('port:') ? handleId.slice(5) : undefined;
}

export interface IpamCheckReport {
  blocks: number;
  allocations: number;
  /** Allocations whose port is gone, or that are not among its port's addresses. */
  leaked: {
    ip: string;
    handleId: string;
    block: string;
    reason: 'no-endpoint' | 'not-an-endpoint-address';
  }[];
  /** Port addresses not allocated to the port (free, or held by someone else). */
  missing: {
    ip: string;
    endpointId: string;
    subnetId: string;
    host: string | null;
    heldBy: string | null;
  }[];
  /** Handle records that hold nothing. */
  orphanHandles: string[];
  /** Handle records whose per-block counts disagree with the blocks. */
  handleMismatches: {
    handleId: string;
    recorded: Record<string, number>;
    actual: Record<string, number>;
  }[];
  ok: boolean;
}

export interface IpamRepairResult {
  released: string[];
  assigned: string[];
  handlesDeleted: string[];
  handlesRewritten: string[];
  /** What could not be repaired (an address a port wants is held by another port). */
  unrepairable: string[];
}

const decode = <T>(kv: { value: string }) => JSON.parse(kv.value) as T;

/** Reads blocks, handles and ports at one revision and compares them. */
export async function checkIpam(ipam: Ipam): Promise<IpamCheckReport> {
  const store = ipam.store;
  const blocksR = await store.list(prefixes.ipamBlock);
  const rev = { revision: blocksR.revision };
  const handles = (await store.list(prefixes.ipamHandle, rev)).items.map((kv) =>
    decode<IpamHandle>(kv),
  );
  const endpoints = [
    ...(await store.list(prefixes.boundEndpoints, rev)).items,
    ...(await store.list(prefixes.unboundEndpoints, rev)).items,
  ]
    .filter((kv) => kv.key.includes('/endpoint/'))
    .map((kv) => KINDS.Endpoint.schema.parse(JSON.parse(kv.value)) as Endpoint);
  const byId = new Map(endpoints.map((e) => [e.id, e]));
  const blocks = blocksR.items.map((kv) => decode<IpamBlock>(kv));
  const report: IpamCheckReport = {
    blocks: blocks.length,
    allocations: 0,
    leaked: [],
    missing: [],
    orphanHandles: [],
    handleMismatches: [],
    ok: true,
  };
  const actualCounts = new Map<string, Record<string, number>>();
  const holderByIp = new Map<string, string | null>();
  for (const { ip, handleId, block } of heldAddresses(blocks)) {
    report.allocations++;
    holderByIp.set(ip, handleId);
    if (handleId === null) continue;
    const counts = actualCounts.get(handleId) ?? {};
    counts[block] = (counts[block] ?? 0) + 1;
    actualCounts.set(handleId, counts);
    const epId = endpointOfHandle(handleId);
    if (epId === undefined) continue; // not a port's: not ours to judge
    const ep = byId.get(epId);
    if (!ep) report.leaked.push({ ip, handleId, block, reason: 'no-endpoint' });
    else if (!ep.fixedIps.some((f) => f.ipAddress === ip))
      report.leaked.push({ ip, handleId, block, reason: 'not-an-endpoint-address' });
  }
  for (const e of endpoints) {
    for (const f of e.fixedIps) {
      const held = holderByIp.get(f.ipAddress);
      if (held !== portHandle(e.id)) {
        report.missing.push({
          ip: f.ipAddress,
          endpointId: e.id,
          subnetId: f.subnetId,
          host: e.host,
          heldBy: held ?? null,
        });
      }
    }
  }
  const recorded = new Map(handles.map((h) => [h.handleId, h.blocks]));
  for (const h of handles) {
    const actual = actualCounts.get(h.handleId);
    if (!actual) report.orphanHandles.push(h.handleId);
    else if (JSON.stringify(sorted(actual)) !== JSON.stringify(sorted(h.blocks)))
      report.handleMismatches.push({ handleId: h.handleId, recorded: h.blocks, actual });
  }
  for (const [handleId, actual] of actualCounts) {
    if (!recorded.has(handleId)) report.handleMismatches.push({ handleId, recorded: {}, actual });
  }
  report.ok =
    report.leaked.length +
      report.missing.length +
      report.orphanHandles.length +
      report.handleMismatches.length ===
    0;
  return report;
}

function sorted(o: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : 1)));
}

/** Fixes what `checkIpam` found: releases leaks, assigns missing port addresses, fixes handle records. */
export async function repairIpam(ipam: Ipam, report?: IpamCheckReport): Promise<IpamRepairResult> {
  const r = report ?? (await checkIpam(ipam));
  const store = ipam.store;
  const out: IpamRepairResult = {
    released: [],
    assigned: [],
    handlesDeleted: [],
    handlesRewritten: [],
    unrepairable: [],
  };
  for (const leak of r.leaked)
    out.released.push(...(await ipam.release([{ ip: leak.ip, handleId: leak.handleId }])));
  for (const m of r.missing) {
    if (m.heldBy !== null && !r.leaked.some((l) => l.ip === m.ip)) {
      out.unrepairable.push(`${m.ip} of port ${m.endpointId} is held by ${m.heldBy}`);
      continue;
    }
    const s = await store.get(keys.subnet(m.subnetId));
    if (!s) {
      out.unrepairable.push(`${m.ip} of port ${m.endpointId}: subnet ${m.subnetId} is gone`);
      continue;
    }
    const subnet = KINDS.Subnet.schema.parse(JSON.parse(s.value)) as Subnet;
    try {
      const a = await ipam.assign({
        subnet,
        ip: m.ip,
        handleId: portHandle(m.endpointId),
        host: m.host,
      });
      out.assigned.push(a.ip);
    } catch (e) {
      if (e instanceof AddressAllocatedError)
        out.unrepairable.push(`${m.ip} of port ${m.endpointId} is held by ${e.holder}`);
      else throw e;
    }
  }
  // Handles: recompute from the blocks now that allocations changed.
  const after = await checkIpam(ipam);
  for (const h of after.orphanHandles) {
    const kv = await store.get(keys.ipamHandle(h));
    if (!kv) continue;
    try {
      await store.delete(kv.key, { expectedModRevision: kv.modRevision });
      out.handlesDeleted.push(h);
    } catch {
      out.unrepairable.push(`handle ${h} changed while repairing`);
    }
  }
  for (const m of after.handleMismatches) {
    const kv = await store.get(keys.ipamHandle(m.handleId));
    const value = JSON.stringify({ handleId: m.handleId, blocks: m.actual });
    const ok = await store.txn({
      compares: [
        kv
          ? {
              key: keys.ipamHandle(m.handleId),
              target: 'modRevision',
              op: '=',
              value: kv.modRevision,
            }
          : { key: keys.ipamHandle(m.handleId), target: 'exists', value: false },
      ],
      success: [{ type: 'put', key: keys.ipamHandle(m.handleId), value }],
    });
    if (ok.succeeded) out.handlesRewritten.push(m.handleId);
    else out.unrepairable.push(`handle ${m.handleId} changed while repairing`);
  }
  return out;
}

/** Addresses a block can still hand out automatically. */

import { cidrContains, cidrSize, firstAddress, parseCidr, parseIP, formatIP } from '@calyx/netaddr';
import type { IpamBlock, IpPool } from '@calyx/model';
import type { IpamCheckReport, IpamRepairResult } from '@calyx/ipam';
import { renderTable } from './table.js';

export interface PoolUsage {
  name: string;
  cidr: string;
  subnetId: string | null;
  /** Addresses in the pool's CIDR. */
  size: string;
  blocks: number;
  /** Addresses allocated in its blocks. */
  used: number;
  /** Addresses its claimed blocks can still hand out. */
  free: number;
}

export interface BlockUsage {
  cidr: string;
  pool: string;
  affinity: string | null;
  size: number;
  used: number;
  free: number;
  /** Handle → addresses it holds in this block. */
  handles: Record<string, number>;
}

export interface IpamSummary {
  pools: PoolUsage[];
  blocks: BlockUsage[];
}

export function blockUsage(b: IpamBlock): BlockUsage {
  const handles: Record<string, number> = {};
  let used = 0;
  for (const a of b.allocations) {
    if (a === null) continue;
    used++;
    const h = b.attributes[a]?.handleId ?? '(none)';
    handles[h] = (handles[h] ?? 0) + 1;
  }
  return {
    cidr: b.cidr,
    pool: b.pool,
    affinity: b.affinity,
    size: b.allocations.length,
    used,
    free: b.unallocated.length,
    handles,
  };
}

/** Pools and blocks with their use (pure). */
export function summarizeIpam(pools: readonly IpPool[], blocks: readonly IpamBlock[]): IpamSummary {
  const usage = blocks.map(blockUsage);
  return {
    pools: pools.map((p) => {
      const mine = usage.filter((b) => b.pool === p.name);
      return {
        name: p.name,
        cidr: p.cidr,
        subnetId: p.subnetId,
        size: cidrSize(parseCidr(p.cidr)).toString(),
        blocks: mine.length,
        used: mine.reduce((n, b) => n + b.used, 0),
        free: mine.reduce((n, b) => n + b.free, 0),
      };
    }),
    blocks: usage,
  };
}

export function renderIpamSummary(s: IpamSummary): string {
  const pools = renderTable(
    ['POOL', 'CIDR', 'SUBNET', 'SIZE', 'BLOCKS', 'USED', 'FREE'],
    s.pools.map((p) => [p.name, p.cidr, p.subnetId, p.size, p.blocks, p.used, p.free]),
  );
  const blocks = renderTable(
    ['BLOCK', 'POOL', 'AFFINITY', 'SIZE', 'USED', 'FREE', 'HANDLES'],
    s.blocks.map((b) => [
      b.cidr,
      b.pool,
      b.affinity,
      b.size,
      b.used,
      b.free,
      Object.keys(b.handles).length,
    ]),
  );
  return `${pools}\n${blocks}`;
}

export interface AddressHolder {
  ip: string;
  /** The block that covers it, if any. */
  block: string | null;
  allocated: boolean;
  handleId: string | null;
}

/** Who holds an address, from the blocks (pure). */
export function addressHolder(ipText: string, blocks: readonly IpamBlock[]): AddressHolder {
  const ip = parseIP(ipText);
  const text = formatIP(ip);
  for (const b of blocks) {
    const c = parseCidr(b.cidr);
    if (!cidrContains(c, ip)) continue;
    const a = b.allocations[Number(ip.value - firstAddress(c).value)];
    const allocated = a !== null && a !== undefined;
    return {
      ip: text,
      block: b.cidr,
      allocated,
      handleId: allocated ? (b.attributes[a]?.handleId ?? null) : null,
    };
  }
  return { ip: text, block: null, allocated: false, handleId: null };
}

export function renderAddressHolder(h: AddressHolder): string {
  if (h.block === null) return `${h.ip}: in no IPAM block (not allocated)\n`;
  if (!h.allocated) return `${h.ip}: free (block ${h.block})\n`;
  return `${h.ip}: allocated to ${h.handleId ?? '(no handle)'} (block ${h.block})\n`;
}

/** The problems a check found, one line each, then a summary line (pure). */
export function renderIpamCheck(r: IpamCheckReport): string {
  const lines: string[] = [];
  for (const l of r.leaked)
    lines.push(
      `leaked    ${l.ip} held by ${l.handleId} in ${l.block}: ${
        l.reason === 'no-endpoint' ? 'its port is gone' : 'not an address of its port'
      }`,
    );
  for (const m of r.missing)
    lines.push(
      `missing   ${m.ip} of port ${m.endpointId} (subnet ${m.subnetId}): ${
        m.heldBy ? `held by ${m.heldBy}` : 'not allocated'
      }`,
    );
  for (const h of r.orphanHandles) lines.push(`orphan    handle ${h} holds nothing`);
  for (const m of r.handleMismatches)
    lines.push(
      `mismatch  handle ${m.handleId} records ${JSON.stringify(m.recorded)}, blocks hold ${JSON.stringify(m.actual)}`,
    );
  lines.push(ipamCheckSummary(r));
  return `${lines.join('\n')}\n`;
}

/** `12 blocks, 340 allocations: consistent` (or the number of problems). */
export function ipamCheckSummary(r: IpamCheckReport): string {
  const problems =
    r.leaked.length + r.missing.length + r.orphanHandles.length + r.handleMismatches.length;
  return `${r.blocks} blocks, ${r.allocations} allocations: ${
    r.ok ? 'consistent' : `${problems} problem${problems === 1 ? '' : 's'}`
  }`;
}

export function renderIpamRepair(r: IpamRepairResult): string {
  const lines = [
    ...r.released.map((ip) => `released  ${ip}`),
    ...r.assigned.map((ip) => `assigned  ${ip}`),
    ...r.handlesDeleted.map((h) => `deleted   handle ${h}`),
    ...r.handlesRewritten.map((h) => `rewrote   handle ${h}`),
    ...r.unrepairable.map((u) => `cannot    ${u}`),
  ];
  lines.push(
    `released ${r.released.length}, assigned ${r.assigned.length}, handles deleted ${r.handlesDeleted.length}, rewritten ${r.handlesRewritten.length}, unrepairable ${r.unrepairable.length}`,
  );
  return `${lines.join('\n')}\n`;
}

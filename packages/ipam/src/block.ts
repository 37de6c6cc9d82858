import {
  bitsOf,
  cidrContains,
  cidrSize,
  compareIP,
  enclosingCidr,
  firstAddress,
  formatCidr,
  formatIP,
  lastAddress,
  nthAddress,
  parseCidr,
  parseIP,
  type Cidr,
  type IPAddress,
} from '@calyx/netaddr';
import type { IpamBlock, Subnet } from '@calyx/model';

// Pure block arithmetic: which addresses a block may hand out, and allocate/free on a copy.

/** The addresses of a subnet that are never handed out: network, (IPv4) broadcast, gateway. */
export function reservedAddresses(subnet: Pick<Subnet, 'cidr' | 'gatewayIp'>): IPAddress[] {
  const c = parseCidr(subnet.cidr);
  const out = [firstAddress(c)];
  if (c.family === 4) out.push(lastAddress(c));
  if (subnet.gatewayIp) out.push(parseIP(subnet.gatewayIp));
  return out;
}

/** Whether `ip` may be auto-assigned: inside an allocation pool and not reserved. */
export function autoAssignable(
  subnet: Pick<Subnet, 'cidr' | 'gatewayIp' | 'allocationPools'>,
  ip: IPAddress,
  reserved = reservedAddresses(subnet),
): boolean {
  if (reserved.some((r) => compareIP(r, ip) === 0)) return false;
  return subnet.allocationPools.some((p) => {
    const s = parseIP(p.start);
    return s.family === ip.family && compareIP(s, ip) <= 0 && compareIP(ip, parseIP(p.end)) <= 0;
  });
}

/** The block size (prefix length) a subnet's pool uses: /26 (IPv4) or /122 (IPv6), or the subnet itself when smaller. */
export function blockPrefixFor(subnetCidr: string, requested?: number): number {
  const c = parseCidr(subnetCidr);
  const wanted = requested ?? (c.family === 4 ? 26 : 122);
  return Math.max(wanted, c.prefixLength);
}

/** The block of `prefix` length that holds `ip`. */
export function blockOf(ip: IPAddress, prefix: number): Cidr {
  return enclosingCidr(ip, prefix);
}

/** A new, empty block: every auto-assignable ordinal is free, in address order. */
export function newBlock(
  cidr: string,
  pool: string,
  affinity: string | null,
  subnet: Pick<Subnet, 'cidr' | 'gatewayIp' | 'allocationPools'>,
): IpamBlock {
  const c = parseCidr(cidr);
  const size = Number(cidrSize(c));
  const reserved = reservedAddresses(subnet);
  const unallocated: number[] = [];
  for (let i = 0; i < size; i++)
    if (autoAssignable(subnet, nthAddress(c, BigInt(i)), reserved)) unallocated.push(i);
  return {
    cidr: formatCidr(c),
    pool,
    affinity,
    allocations: new Array<number | null>(size).fill(null),
    unallocated,
    attributes: [],
    sequenceNumber: 0,
    sequenceNumberForAllocation: {},
  };
}

/** How many addresses a block range could auto-assign (without building it). */
export function assignableCount(
  cidr: Cidr,
  subnet: Pick<Subnet, 'cidr' | 'gatewayIp' | 'allocationPools'>,
): number {
  const reserved = reservedAddresses(subnet);
  const size = cidrSize(cidr);
  let n = 0;
  // Blocks are at most 64k addresses (the model caps block sizes); pools usually cover them whole.
  for (let i = 0n; i < size; i++)
    if (autoAssignable(subnet, { family: cidr.family, value: cidr.network + i }, reserved)) n++;
  return n;
}

export function ordinalOf(block: IpamBlock, ip: IPAddress): number {
  const c = parseCidr(block.cidr);
  if (!cidrContains(c, ip)) throw new RangeError(`${formatIP(ip)} is not in block ${block.cidr}`);
  return Number(ip.value - c.network);
}

export function addressAt(block: IpamBlock, ordinal: number): string {
  return formatIP(nthAddress(parseCidr(block.cidr), BigInt(ordinal)));
}

function attributeIndex(block: IpamBlock, handleId: string): number {
  const i = block.attributes.findIndex((a) => a.handleId === handleId);
  if (i >= 0) return i;
  block.attributes.push({ handleId, secondary: {} });
  return block.attributes.length - 1;
}

export function cloneBlock(b: IpamBlock): IpamBlock {
  return {
    ...b,
    allocations: [...b.allocations],
    unallocated: [...b.unallocated],
    attributes: b.attributes.map((a) => ({ handleId: a.handleId, secondary: { ...a.secondary } })),
    sequenceNumberForAllocation: { ...b.sequenceNumberForAllocation },
  };
}

/** Takes the first free ordinal for `handleId`; returns it (or undefined when full). Mutates `b`. */
export function allocateNext(b: IpamBlock, handleId: string): number | undefined {
  const ordinal = b.unallocated.shift();
  if (ordinal === undefined) return undefined;
  b.allocations[ordinal] = attributeIndex(b, handleId);
  b.sequenceNumber++;
  b.sequenceNumberForAllocation[String(ordinal)] = b.sequenceNumber;
  return ordinal;
}

/** Takes a specific ordinal; false when it is already held. Mutates `b`. */
export function allocateOrdinal(b: IpamBlock, ordinal: number, handleId: string): boolean {
  if (b.allocations[ordinal] !== null && b.allocations[ordinal] !== undefined) return false;
  b.allocations[ordinal] = attributeIndex(b, handleId);
  const at = b.unallocated.indexOf(ordinal);
  if (at >= 0) b.unallocated.splice(at, 1);
  b.sequenceNumber++;
  b.sequenceNumberForAllocation[String(ordinal)] = b.sequenceNumber;
  return true;
}

/** Who holds an ordinal (handle id), if anyone. */
/** An allocated address of a block and who holds it (null: no handle). */
export interface HeldAddress {
  ip: string;
  handleId: string | null;
  block: string;
  /** The allocation's sequence number (a release with it frees only this allocation). */
  sequence: number | undefined;
}

/** Every allocated address of `blocks`, in block then address order. */
export function heldAddresses(blocks: readonly IpamBlock[]): HeldAddress[] {
  const out: HeldAddress[] = [];
  for (const b of blocks) {
    const c = parseCidr(b.cidr);
    b.allocations.forEach((a, ordinal) => {
      if (a === null) return;
      out.push({
        ip: formatIP(nthAddress(c, BigInt(ordinal))),
        handleId: b.attributes[a]?.handleId ?? null,
        block: b.cidr,
        sequence: b.sequenceNumberForAllocation[String(ordinal)],
      });
    });
  }
  return out;
}

export function holderOf(b: IpamBlock, ordinal: number): string | null | undefined {
  const a = b.allocations[ordinal];
  if (a === null || a === undefined) return undefined;
  return b.attributes[a]?.handleId ?? null;
}

/**
 * Frees an ordinal. With `handleId`, only if that handle holds it; with `sequence`, only if it
 * was allocated at that sequence (so a stale release cannot free an address reused meanwhile).
 * Returns whether it was freed. Mutates `b`. Auto-assignable ordinals go back to the free list.
 */
export function freeOrdinal(
  b: IpamBlock,
  ordinal: number,
  opts: { handleId?: string; sequence?: number; assignable: boolean },
): boolean {
  const a = b.allocations[ordinal];
  if (a === null || a === undefined) return false;
  if (opts.handleId !== undefined && b.attributes[a]?.handleId !== opts.handleId) return false;
  if (
    opts.sequence !== undefined &&
    b.sequenceNumberForAllocation[String(ordinal)] !== opts.sequence
  )
    return false;
  b.allocations[ordinal] = null;
  delete b.sequenceNumberForAllocation[String(ordinal)];
  if (opts.assignable && !b.unallocated.includes(ordinal)) b.unallocated.push(ordinal);
  b.sequenceNumber++;
  compactAttributes(b);
  return true;
}

/** Drops attributes no allocation points at, renumbering the rest. */
export function compactAttributes(b: IpamBlock): void {
  const used = new Set(b.allocations.filter((a): a is number => a !== null));
  if (used.size === b.attributes.length) return;
  const remap = new Map<number, number>();
  const kept: IpamBlock['attributes'] = [];
  b.attributes.forEach((attr, i) => {
    if (used.has(i)) {
      remap.set(i, kept.length);
      kept.push(attr);
    }
  });
  b.attributes = kept;
  b.allocations = b.allocations.map((a) => (a === null ? null : (remap.get(a) ?? null)));
}

export function isEmpty(b: IpamBlock): boolean {
  return b.allocations.every((a) => a === null);
}

export function bitsFor(cidr: string): number {
  return bitsOf(parseCidr(cidr).family);
}

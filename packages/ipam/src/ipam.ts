import { createHash } from 'node:crypto';
import { CalyxError, backoffDelay, silentLogger, sleep, type Logger } from '@calyx/core';
import {
  cidrContains,
  formatCidr,
  formatIP,
  parseCidr,
  parseIP,
  subnetsOf,
  type Cidr,
  type IPAddress,
} from '@calyx/netaddr';
import {
  HANDLE_PATTERN,
  KINDS,
  keys,
  parseKey,
  prefixes,
  parseResource,
  type BlockAffinity,
  type IpamBlock,
  type IpamHandle,
  type IpPool,
  type Subnet,
} from '@calyx/model';
import type { Compare, Datastore, KeyValue, TxnOp } from '@calyx/datastore';
import {
  addressAt,
  allocateNext,
  allocateOrdinal,
  assignableCount,
  autoAssignable,
  blockOf,
  blockPrefixFor,
  cloneBlock,
  freeOrdinal,
  holderOf,
  isEmpty,
  newBlock,
  ordinalOf,
  reservedAddresses,
} from './block.js';

export class IpamExhaustedError extends CalyxError {
  constructor(
    readonly subnetId: string,
    readonly cidr: string,
  ) {
    super('IPAM_EXHAUSTED', `no free address left in subnet ${subnetId} (${cidr})`);
  }
}

export class AddressAllocatedError extends CalyxError {
  constructor(
    readonly address: string,
    readonly holder: string | null,
  ) {
    super(
      'ADDRESS_ALLOCATED',
      `address ${address} is already allocated${holder ? ` to ${holder}` : ''}`,
    );
  }
}

export class AddressNotAssignableError extends CalyxError {
  constructor(
    readonly address: string,
    reason: string,
  ) {
    super('ADDRESS_NOT_ASSIGNABLE', `address ${address} cannot be assigned: ${reason}`);
  }
}

export class IpamContentionError extends CalyxError {
  constructor(what: string, attempts: number) {
    super('IPAM_CONTENTION', `${what}: gave up after ${attempts} conflicting attempts`);
  }
}

function assertHandle(handleId: string): void {
  if (!HANDLE_PATTERN.test(handleId))
    throw new AddressNotAssignableError('-', `invalid handle id ${JSON.stringify(handleId)}`);
}

/** The pool Calyx keeps for a subnet. */
export function subnetPoolName(subnetId: string): string {
  const name = `subnet-${subnetId}`;
  return name.length <= 128
    ? name
    : `subnet-${createHash('sha256').update(subnetId).digest('hex').slice(0, 40)}`;
}

/** The IpPool record for a subnet (created by the driver in the subnet's own transaction). */
export function subnetPool(subnet: Pick<Subnet, 'id' | 'cidr'>): IpPool {
  return parseResource('IpPool', {
    name: subnetPoolName(subnet.id),
    cidr: subnet.cidr,
    blockSize: blockPrefixFor(subnet.cidr),
    subnetId: subnet.id,
  });
}

export interface Allocation {
  ip: string;
  handleId: string;
  block: string;
  /** Sequence number of the allocation in its block (pass it to `release` to free exactly this one). */
  sequence: number;
}

export interface IpamOptions {
  logger?: Logger;
  /** Compare-and-set attempts before IpamContentionError. Default 100. */
  maxAttempts?: number;
}

type SubnetRef = Pick<Subnet, 'id' | 'cidr' | 'gatewayIp' | 'allocationPools'>;

interface CachedBlock {
  block: IpamBlock;
  modRevision: bigint;
}

const enc = (v: unknown): string => JSON.stringify(v);

/**
 * Calico-style IPAM over any Datastore: each subnet's pool is split into blocks (/26, /122)
 * that hosts claim with an affinity, so a host's addresses aggregate. Every change is one
 * transaction comparing the block's (and the handle's) revision; losers retry with backoff.
 * One instance may be shared by concurrent callers; several instances (processes) may work on
 * the same store.
 */
function blockCidrOfKey(key: string): string | undefined {
  try {
    const k = parseKey(key);
    return k.kind === 'IpamBlock' ? k.cidr : undefined;
  } catch {
    return undefined;
  }
}

export class Ipam {
  private readonly logger: Logger;
  private readonly maxAttempts: number;
  private readonly blocks = new Map<string, CachedBlock>();
  /** Per host, the tail of its queue of automatic assignments. */
  private readonly hostQueues = new Map<string, Promise<void>>();
  /** host → block cidrs it has affinity to (per pool), as last seen. */
  private readonly affinities = new Map<string, Set<string>>();
  /**
   * host|subnet → the host's block that last had room: tried first, so an allocation does not
   * walk every block of a host that has filled many (that walk made allocation O(blocks)).
   */
  private readonly roomHint = new Map<string, string>();

  constructor(
    readonly store: Datastore,
    opts: IpamOptions = {},
  ) {
    this.logger = (opts.logger ?? silentLogger).child({ component: 'ipam' });
    this.maxAttempts = opts.maxAttempts ?? 100;
  }

  private async pause(attempt: number): Promise<void> {
    if (attempt > 2) await sleep(backoffDelay(attempt - 3, { baseMs: 1, maxMs: 50 }));
  }

  /**
   * What IPAM writes is checked before it is written. Blocks are built here from validated
   * parts, so a structural check suffices on this hot path (the full schema runs on read).
   */
  private validated(block: IpamBlock): string {
    const size = block.allocations.length;
    const ok =
      size > 0 &&
      block.unallocated.every(
        (o) => Number.isInteger(o) && o >= 0 && o < size && block.allocations[o] === null,
      ) &&
      block.allocations.every(
        (a) => a === null || (Number.isInteger(a) && a >= 0 && a < block.attributes.length),
      );
    if (!ok) throw new Error(`internal: refusing to write an inconsistent block ${block.cidr}`);
    return enc(block);
  }

  private readonly inSubnetCache = new Map<string, boolean>();

  /** Whether a block (by its cidr text) lies in a subnet; memoised, as it is asked per allocation. */
  private blockInSubnet(blockCidr: string, subnetCidr: string): boolean {
    const k = `${subnetCidr}|${blockCidr}`;
    let v = this.inSubnetCache.get(k);
    if (v === undefined) {
      v = cidrContains(parseCidr(subnetCidr), parseIP(blockCidr.slice(0, blockCidr.indexOf('/'))));
      this.inSubnetCache.set(k, v);
    }
    return v;
  }

  private async loadBlock(cidr: string): Promise<CachedBlock | undefined> {
    const kv = await this.store.get(keys.ipamBlock(cidr));
    if (!kv) {
      this.blocks.delete(cidr);
      return undefined;
    }
    return this.remember(kv);
  }

  private remember(kv: KeyValue): CachedBlock {
    const block = parseResource('IpamBlock', JSON.parse(kv.value));
    const c = { block, modRevision: kv.modRevision };
    this.blocks.set(block.cidr, c);
    return c;
  }

  private async hostBlocks(host: string, refresh: boolean): Promise<Set<string>> {
    let set = this.affinities.get(host);
    if (!set || refresh) {
      const r = await this.store.list(prefixes.hostAffinities(host));
      set = new Set(r.items.map((kv) => (JSON.parse(kv.value) as BlockAffinity).cidr));
      this.affinities.set(host, set);
    }
    return set;
  }

  /**
   * Commits `next` for a block plus the handle's new count, comparing the block's revision
   * (or absence) and the handle's. On a lost race, refreshes what changed and returns false.
   */
  private async commitBlock(opts: {
    cidr: string;
    prev: CachedBlock | undefined;
    next: IpamBlock | null;
    affinity?: { host: string; create: boolean } | { host: string; delete: true };
    handleId: string;
    handle: { kv: KeyValue | undefined | null; delta: number };
  }): Promise<{ ok: boolean; revision: bigint }> {
    const bkey = keys.ipamBlock(opts.cidr);
    const hkey = keys.ipamHandle(opts.handleId);
    const compares: Compare[] = [
      opts.prev
        ? { key: bkey, target: 'modRevision', op: '=', value: opts.prev.modRevision }
        : { key: bkey, target: 'exists', value: false },
    ];
    const ops: TxnOp[] = [
      opts.next
        ? { type: 'put', key: bkey, value: this.validated(opts.next) }
        : { type: 'delete', key: bkey },
    ];
    if (opts.affinity) {
      const akey = keys.blockAffinity(opts.affinity.host, opts.cidr);
      if ('delete' in opts.affinity) ops.push({ type: 'delete', key: akey });
      else if (opts.affinity.create) {
        compares.push({ key: akey, target: 'exists', value: false });
        const aff: BlockAffinity = {
          host: opts.affinity.host,
          cidr: opts.cidr,
          state: 'confirmed',
        };
        ops.push({ type: 'put', key: akey, value: enc(parseResource('BlockAffinity', aff)) });
      }
    }
    // The handle: `kv === null` means "assume it does not exist yet" (a new port's handle).
    const handleKv = opts.handle.kv;
    const current: IpamHandle = handleKv
      ? (JSON.parse(handleKv.value) as IpamHandle)
      : { handleId: opts.handleId, blocks: {} };
    const count = (current.blocks[opts.cidr] ?? 0) + opts.handle.delta;
    const blocks = { ...current.blocks };
    if (count > 0) blocks[opts.cidr] = count;
    else delete blocks[opts.cidr];
    compares.push(
      handleKv
        ? { key: hkey, target: 'modRevision', op: '=', value: handleKv.modRevision }
        : { key: hkey, target: 'exists', value: false },
    );
    if (Object.keys(blocks).length)
      ops.push({ type: 'put', key: hkey, value: enc({ handleId: opts.handleId, blocks }) });
    else if (handleKv) ops.push({ type: 'delete', key: hkey });
    // On failure only the (small) handle comes back: reading the block in every commit cost
    // ~12% on etcd, while a lost race on a host's own block is rare. A port's second address
    // meets its existing handle (assumed absent): that retry needs no block read.
    const r = await this.store.txn({
      compares,
      success: ops,
      failure: [{ type: 'get', key: hkey }],
    });
    if (r.succeeded) {
      if (opts.next) this.blocks.set(opts.cidr, { block: opts.next, modRevision: r.revision });
      else this.blocks.delete(opts.cidr);
      return { ok: true, revision: r.revision };
    }
    const h = r.results[0]?.type === 'get' ? r.results[0].kv : undefined;
    const handleAsAssumed = handleKv ? h?.modRevision === handleKv.modRevision : h === undefined;
    opts.handle.kv = h;
    if (handleAsAssumed) {
      // Then the block (or an affinity) changed: learn the block as it is now.
      const b = await this.store.get(bkey);
      if (b) this.remember(b);
      else this.blocks.delete(opts.cidr);
    }
    return { ok: false, revision: r.revision };
  }

  /**
   * The next free address of `subnet` for `handleId`: from the host's own blocks first, then
   * a newly claimed block, then (pool full) borrowed from another host's block.
   */
  async autoAssign(req: {
    subnet: SubnetRef;
    handleId: string;
    host: string | null;
  }): Promise<Allocation> {
    // Requests for one host go one after the other: they would all compete for the same
    // block, and every loser of a compare-and-set pays a retry. Other processes (other
    // hosts' blocks) are rarely in the way.
    const key = req.host ?? '';
    const before = this.hostQueues.get(key) ?? Promise.resolve();
    const mine = before.then(() => this.autoAssignNow(req));
    const tail = mine.then(
      () => undefined,
      () => undefined,
    );
    this.hostQueues.set(key, tail);
    void tail.then(() => {
      if (this.hostQueues.get(key) === tail) this.hostQueues.delete(key);
    });
    return mine;
  }

  private async autoAssignNow(req: {
    subnet: SubnetRef;
    handleId: string;
    host: string | null;
  }): Promise<Allocation> {
    const { subnet, handleId, host } = req;
    assertHandle(handleId);
    const prefix = blockPrefixFor(subnet.cidr);
    const pool = subnetPoolName(subnet.id);
    const handle = { kv: null as KeyValue | undefined | null, delta: 1 };
    let refreshed = false;
    for (let attempt = 1; attempt <= this.maxAttempts; attempt++) {
      await this.pause(attempt);
      // 1. Blocks with affinity to this host: the one that last had room, else all in order.
      if (host !== null) {
        const hintKey = `${host}|${subnet.cidr}`;
        const hint = refreshed ? undefined : this.roomHint.get(hintKey);
        const affine = await this.hostBlocks(host, refreshed);
        const hinted = hint !== undefined && affine.has(hint) ? this.blocks.get(hint) : undefined;
        const mine =
          hinted && hinted.block.unallocated.length > 0
            ? [hint!]
            : [...affine].filter((c) => this.blockInSubnet(c, subnet.cidr)).sort();
        let lost = false;
        for (const cidr of mine) {
          const cached = this.blocks.get(cidr) ?? (await this.loadBlock(cidr));
          if (cached && (cached.block.affinity !== host || cached.block.pool !== pool)) {
            // Emptied, deleted and claimed by another host meanwhile: no longer ours.
            affine.delete(cidr);
            if (this.roomHint.get(hintKey) === cidr) this.roomHint.delete(hintKey);
            continue;
          }
          if (!cached || cached.block.unallocated.length === 0) continue;
          const next = cloneBlock(cached.block);
          const ordinal = allocateNext(next, handleId)!;
          const r = await this.commitBlock({ cidr, prev: cached, next, handleId, handle });
          if (r.ok) {
            this.roomHint.set(hintKey, cidr);
            return {
              ip: addressAt(next, ordinal),
              handleId,
              block: cidr,
              sequence: next.sequenceNumber,
            };
          }
          lost = true;
          break;
        }
        if (lost) continue;
        if (!refreshed) {
          refreshed = true;
          continue; // another process may have claimed blocks for this host
        }
      }
      // 2. Claim a free block of the pool (an unbound port first looks for room anywhere).
      const existing = await this.store.list(prefixes.ipamBlock);
      // Taken block ranges come from the keys: parsing every block's value made each claim
      // cost O(blocks) of JSON. (A block range exists once, whatever its pool.)
      const taken = new Set<string>();
      for (const kv of existing.items) {
        const cidr = blockCidrOfKey(kv.key);
        if (cidr !== undefined) taken.add(cidr);
        else this.logger.warn({ key: kv.key }, 'ignoring a key that is not a block');
      }
      if (host !== null) {
        // Room another process freed in one of this host's blocks (cached here as full): use
        // it rather than claim another block.
        const affine = await this.hostBlocks(host, false);
        const freed = existing.items.find((kv) => {
          const cidr = blockCidrOfKey(kv.key);
          if (cidr === undefined || !affine.has(cidr) || !this.blockInSubnet(cidr, subnet.cidr))
            return false;
          const b = JSON.parse(kv.value) as IpamBlock;
          return b.affinity === host && b.pool === pool && b.unallocated.length > 0;
        });
        const known = freed && this.blocks.get(blockCidrOfKey(freed.key)!);
        if (freed && known?.modRevision !== freed.modRevision) {
          this.remember(freed);
          continue;
        }
      }
      const hasRoomInPool = () =>
        existing.items.some((kv) => {
          const b = JSON.parse(kv.value) as IpamBlock;
          return b.pool === pool && b.unallocated.length > 0;
        });
      const free =
        host === null && hasRoomInPool() ? undefined : this.firstFreeBlock(subnet, prefix, taken);
      if (free) {
        const cidr = formatCidr(free);
        const next = newBlock(cidr, pool, host, subnet);
        const ordinal = allocateNext(next, handleId)!;
        const r = await this.commitBlock({
          cidr,
          prev: undefined,
          next,
          handleId,
          handle,
          ...(host !== null ? { affinity: { host, create: true } } : {}),
        });
        if (r.ok) {
          if (host !== null) {
            (await this.hostBlocks(host, false)).add(cidr);
            this.roomHint.set(`${host}|${subnet.cidr}`, cidr);
          }
          this.logger.debug({ host, block: cidr }, 'claimed a block');
          return {
            ip: addressAt(next, ordinal),
            handleId,
            block: cidr,
            sequence: next.sequenceNumber,
          };
        }
        continue;
      }
      // 3. Borrow from any block of the pool with room (another host's, or unaffine).
      const withRoom = existing.items.filter((kv) => {
        const b = JSON.parse(kv.value) as IpamBlock;
        return b.pool === pool && b.unallocated.length > 0;
      });
      if (withRoom.length === 0) throw new IpamExhaustedError(subnet.id, subnet.cidr);
      const kv = withRoom[Math.floor(Math.random() * withRoom.length)]!;
      const cached = this.remember(kv);
      const next = cloneBlock(cached.block);
      const ordinal = allocateNext(next, handleId)!;
      const r = await this.commitBlock({
        cidr: cached.block.cidr,
        prev: cached,
        next,
        handleId,
        handle,
      });
      if (r.ok)
        return {
          ip: addressAt(next, ordinal),
          handleId,
          block: cached.block.cidr,
          sequence: next.sequenceNumber,
        };
    }
    throw new IpamContentionError(`allocating in subnet ${subnet.id}`, this.maxAttempts);
  }

  private firstFreeBlock(subnet: SubnetRef, prefix: number, taken: Set<string>): Cidr | undefined {
    const c = parseCidr(subnet.cidr);
    let examined = 0;
    for (const candidate of subnetsOf(c, prefix)) {
      if (taken.has(formatCidr(candidate))) continue;
      if (assignableCount(candidate, subnet) > 0) return candidate;
      // An IPv6 /64 has 2^58 blocks: allocation pools far from the start would take forever.
      if (++examined > 65_536) break;
    }
    return undefined;
  }

  /**
   * A specific address (a fixed IP). It must be inside the subnet and not its network,
   * broadcast or gateway address; it may be outside the allocation pools (as in Neutron).
   * Idempotent for the same handle; AddressAllocatedError when someone else holds it.
   */
  async assign(req: {
    subnet: SubnetRef;
    ip: string;
    handleId: string;
    host: string | null;
  }): Promise<Allocation> {
    const { subnet, handleId, host } = req;
    assertHandle(handleId);
    const ip = parseIP(req.ip);
    const c = parseCidr(subnet.cidr);
    if (!cidrContains(c, ip))
      throw new AddressNotAssignableError(
        formatIP(ip),
        `outside subnet ${subnet.id} (${subnet.cidr})`,
      );
    if (reservedAddresses(subnet).some((r) => r.value === ip.value)) {
      throw new AddressNotAssignableError(
        formatIP(ip),
        `network, broadcast or gateway address of ${subnet.cidr}`,
      );
    }
    const cidr = formatCidr(blockOf(ip, blockPrefixFor(subnet.cidr)));
    const pool = subnetPoolName(subnet.id);
    const handle = { kv: null as KeyValue | undefined | null, delta: 1 };
    for (let attempt = 1; attempt <= this.maxAttempts; attempt++) {
      await this.pause(attempt);
      const cached = attempt === 1 ? await this.loadBlock(cidr) : this.blocks.get(cidr);
      const next = cached ? cloneBlock(cached.block) : newBlock(cidr, pool, host, subnet);
      const ordinal = ordinalOf(next, ip);
      const holder = holderOf(next, ordinal);
      if (holder !== undefined) {
        if (holder === handleId)
          return {
            ip: formatIP(ip),
            handleId,
            block: cidr,
            sequence: next.sequenceNumberForAllocation[String(ordinal)] ?? 0,
          };
        throw new AddressAllocatedError(formatIP(ip), holder);
      }
      allocateOrdinal(next, ordinal, handleId);
      const r = await this.commitBlock({
        cidr,
        prev: cached,
        next,
        handleId,
        handle,
        ...(!cached && host !== null ? { affinity: { host, create: true } } : {}),
      });
      if (r.ok) {
        if (!cached && host !== null) (await this.hostBlocks(host, false)).add(cidr);
        return { ip: formatIP(ip), handleId, block: cidr, sequence: next.sequenceNumber };
      }
    }
    throw new IpamContentionError(`assigning ${formatIP(ip)}`, this.maxAttempts);
  }

  /**
   * Many specific addresses at once (a resync, an import): per block, up to `perTxn`
   * addresses of distinct new handles in one transaction instead of one each. Results come
   * back in request order: an Allocation, or the error `assign` would have thrown for that
   * request (AddressNotAssignableError, AddressAllocatedError). A chunk that meets an existing
   * handle or a concurrent block change falls back to `assign` one by one, so the outcome is
   * always what sequential `assign` calls would give.
   */
  async assignMany(
    reqs: readonly { subnet: SubnetRef; ip: string; handleId: string; host: string | null }[],
    opts: { perTxn?: number; concurrency?: number } = {},
  ): Promise<Array<Allocation | Error>> {
    const out: Array<Allocation | Error | undefined> = new Array(reqs.length);
    const byBlock = new Map<string, number[]>();
    reqs.forEach((r, i) => {
      try {
        assertHandle(r.handleId);
        const ip = parseIP(r.ip);
        const c = parseCidr(r.subnet.cidr);
        if (!cidrContains(c, ip))
          throw new AddressNotAssignableError(
            formatIP(ip),
            `outside subnet ${r.subnet.id} (${r.subnet.cidr})`,
          );
        if (reservedAddresses(r.subnet).some((x) => x.value === ip.value))
          throw new AddressNotAssignableError(
            formatIP(ip),
            `network, broadcast or gateway address of ${r.subnet.cidr}`,
          );
        const cidr = formatCidr(blockOf(ip, blockPrefixFor(r.subnet.cidr)));
        const list = byBlock.get(cidr);
        if (list) list.push(i);
        else byBlock.set(cidr, [i]);
      } catch (e) {
        out[i] = e as Error;
      }
    });
    // Compares + writes + failure reads of a chunk stay well under the store's limit per txn.
    const perTxn = Math.max(1, Math.min(opts.perTxn ?? 30, 30));
    const one = async (i: number) => {
      out[i] = await this.assign(reqs[i]!).catch((e: unknown) => e as Error);
    };
    const blocks = [...byBlock];
    let next = 0;
    const worker = async () => {
      while (next < blocks.length) {
        const [cidr, idx] = blocks[next++]!;
        for (let k = 0; k < idx.length;) {
          // A chunk holds each handle once: two addresses of one port go in separate chunks.
          const chunk: number[] = [];
          const handles = new Set<string>();
          while (k < idx.length && chunk.length < perTxn && !handles.has(reqs[idx[k]!]!.handleId)) {
            handles.add(reqs[idx[k]!]!.handleId);
            chunk.push(idx[k++]!);
          }
          if (!(await this.assignChunk(cidr, chunk, reqs, out)))
            for (const i of chunk) await one(i);
        }
      }
    };
    await Promise.all(Array.from({ length: opts.concurrency ?? 16 }, worker));
    return out as Array<Allocation | Error>;
  }

  /** One transaction for a chunk of one block, assuming its handles are new; false: do it slowly. */
  private async assignChunk(
    cidr: string,
    chunk: readonly number[],
    reqs: readonly { subnet: SubnetRef; ip: string; handleId: string; host: string | null }[],
    out: Array<Allocation | Error | undefined>,
  ): Promise<boolean> {
    const first = reqs[chunk[0]!]!;
    const cached = await this.loadBlock(cidr);
    const block = cached
      ? cloneBlock(cached.block)
      : newBlock(cidr, subnetPoolName(first.subnet.id), first.host, first.subnet);
    const pending: { i: number; ordinal: number }[] = [];
    for (const i of chunk) {
      const r = reqs[i]!;
      const ordinal = ordinalOf(block, parseIP(r.ip));
      const holder = holderOf(block, ordinal);
      if (holder === r.handleId)
        out[i] = {
          ip: formatIP(parseIP(r.ip)),
          handleId: r.handleId,
          block: cidr,
          sequence: block.sequenceNumberForAllocation[String(ordinal)] ?? 0,
        };
      else if (holder !== undefined)
        out[i] = new AddressAllocatedError(formatIP(parseIP(r.ip)), holder);
      else {
        allocateOrdinal(block, ordinal, r.handleId);
        pending.push({ i, ordinal });
      }
    }
    if (pending.length === 0) return true;
    const bkey = keys.ipamBlock(cidr);
    const compares: Compare[] = [
      cached
        ? { key: bkey, target: 'modRevision', op: '=', value: cached.modRevision }
        : { key: bkey, target: 'exists', value: false },
    ];
    const ops: TxnOp[] = [{ type: 'put', key: bkey, value: this.validated(block) }];
    if (!cached && first.host !== null) {
      const akey = keys.blockAffinity(first.host, cidr);
      compares.push({ key: akey, target: 'exists', value: false });
      const aff: BlockAffinity = { host: first.host, cidr, state: 'confirmed' };
      ops.push({ type: 'put', key: akey, value: enc(parseResource('BlockAffinity', aff)) });
    }
    for (const { i } of pending) {
      const handleId = reqs[i]!.handleId;
      const hkey = keys.ipamHandle(handleId);
      compares.push({ key: hkey, target: 'exists', value: false });
      ops.push({ type: 'put', key: hkey, value: enc({ handleId, blocks: { [cidr]: 1 } }) });
    }
    const r = await this.store.txn({
      compares,
      success: ops,
      failure: [{ type: 'get', key: bkey }],
    });
    if (!r.succeeded) {
      const b = r.results[0];
      if (b?.type === 'get') {
        if (b.kv) this.remember(b.kv);
        else this.blocks.delete(cidr);
      }
      return false;
    }
    this.blocks.set(cidr, { block, modRevision: r.revision });
    if (!cached && first.host !== null) (await this.hostBlocks(first.host, false)).add(cidr);
    for (const { i, ordinal } of pending)
      out[i] = {
        ip: formatIP(parseIP(reqs[i]!.ip)),
        handleId: reqs[i]!.handleId,
        block: cidr,
        sequence: block.sequenceNumberForAllocation[String(ordinal)] ?? 0,
      };
    return true;
  }

  private async subnetOfPool(pool: string): Promise<SubnetRef | undefined> {
    const p = await this.store.get(keys.ipPool(pool));
    const subnetId = p ? (JSON.parse(p.value) as IpPool).subnetId : null;
    if (!subnetId) return undefined;
    const s = await this.store.get(keys.subnet(subnetId));
    return s ? (KINDS.Subnet.schema.parse(JSON.parse(s.value)) as Subnet) : undefined;
  }

  /**
   * Frees addresses in one block: those held by `handleId` (all of them, or only `only`), or
   * when `sequence` is given only if still the same allocation. Empty blocks are deleted and
   * give up their affinity. Returns the freed addresses.
   */
  private async releaseInBlock(
    cidr: string,
    handleId: string | undefined,
    only: Map<number, number | undefined> | undefined,
  ): Promise<string[]> {
    for (let attempt = 1; attempt <= this.maxAttempts; attempt++) {
      await this.pause(attempt);
      const cached = await this.loadBlock(cidr);
      if (!cached) return [];
      const subnet = await this.subnetOfPool(cached.block.pool);
      const next = cloneBlock(cached.block);
      const freed: string[] = [];
      const byHandle = new Map<string, number>();
      const ordinals = only ? [...only.keys()] : next.allocations.map((_, i) => i);
      for (const ordinal of ordinals) {
        const holder = holderOf(next, ordinal);
        if (holder === undefined) continue;
        if (handleId !== undefined && holder !== handleId) continue;
        const sequence = only?.get(ordinal);
        const ip = parseIP(addressAt(next, ordinal));
        const assignable = subnet ? autoAssignable(subnet, ip) : false;
        if (
          freeOrdinal(next, ordinal, {
            ...(handleId !== undefined ? { handleId } : {}),
            ...(sequence !== undefined ? { sequence } : {}),
            assignable,
          })
        ) {
          freed.push(formatIP(ip));
          if (holder !== null) byHandle.set(holder, (byHandle.get(holder) ?? 0) + 1);
        }
      }
      if (freed.length === 0) return [];
      // One holder per release call (by handle); a release by address may touch several: do them one by one.
      if (byHandle.size > 1)
        throw new Error('internal: releaseInBlock freed addresses of several handles');
      const [holder, count] = [...byHandle][0]!;
      const hk = await this.store.get(keys.ipamHandle(holder));
      const empty = isEmpty(next);
      const r = await this.commitBlock({
        cidr,
        prev: cached,
        next: empty ? null : next,
        ...(empty && next.affinity
          ? { affinity: { host: next.affinity, delete: true as const } }
          : {}),
        handleId: holder,
        handle: { kv: hk, delta: -count },
      });
      if (r.ok) {
        if (empty && next.affinity) this.affinities.get(next.affinity)?.delete(cidr);
        return freed;
      }
    }
    throw new IpamContentionError(`releasing in block ${cidr}`, this.maxAttempts);
  }

  /** Frees every address a handle holds (a deleted port's); returns them. */
  async releaseByHandle(handleId: string): Promise<string[]> {
    const kv = await this.store.get(keys.ipamHandle(handleId));
    if (!kv) return [];
    const handle = JSON.parse(kv.value) as IpamHandle;
    const out: string[] = [];
    for (const cidr of Object.keys(handle.blocks))
      out.push(...(await this.releaseInBlock(cidr, handleId, undefined)));
    return out;
  }

  /**
   * Frees specific addresses. With `handleId`, only if that handle holds it; with `sequence`
   * (from the Allocation), only if it has not been released and reused since.
   */
  async release(items: { ip: string; handleId?: string; sequence?: number }[]): Promise<string[]> {
    const out: string[] = [];
    for (const it of items) {
      const ip = parseIP(it.ip);
      const holding = await this.blockHolding(ip, it.handleId);
      if (!holding) continue;
      const ordinal = ordinalOf(holding, ip);
      const holder = holderOf(holding, ordinal);
      if (holder === undefined || (it.handleId !== undefined && holder !== it.handleId)) continue;
      out.push(
        ...(await this.releaseInBlock(
          holding.cidr,
          holder ?? undefined,
          new Map([[ordinal, it.sequence]]),
        )),
      );
    }
    return out;
  }

  /**
   * The block that holds `ip`: with a handle, among the blocks the handle records (one read
   * each, not a list of every block); without, by listing the blocks.
   */
  private async blockHolding(ip: IPAddress, handleId?: string): Promise<IpamBlock | undefined> {
    if (handleId === undefined) {
      const blocks = await this.store.list(prefixes.ipamBlock);
      return blocks.items
        .map((kv) => JSON.parse(kv.value) as IpamBlock)
        .find((b) => cidrContains(parseCidr(b.cidr), ip));
    }
    const hkv = await this.store.get(keys.ipamHandle(handleId));
    const handle = hkv ? (JSON.parse(hkv.value) as IpamHandle) : undefined;
    const cidr = Object.keys(handle?.blocks ?? {}).find((c) => cidrContains(parseCidr(c), ip));
    const block = cidr === undefined ? undefined : (await this.loadBlock(cidr))?.block;
    if (block) return block;
    // The handle does not say (a missing or wrong handle record: what repair and resync
    // release): look through every block.
    return this.blockHolding(ip);
  }

  /** Who holds an address, if anyone. */
  async holderOf(ipText: string): Promise<{ handleId: string | null; block: string } | undefined> {
    const ip = parseIP(ipText);
    const blocks = await this.store.list(prefixes.ipamBlock);
    for (const kv of blocks.items) {
      const b = JSON.parse(kv.value) as IpamBlock;
      if (!cidrContains(parseCidr(b.cidr), ip)) continue;
      const h = holderOf(b, ordinalOf(b, ip));
      return h === undefined ? undefined : { handleId: h, block: b.cidr };
    }
    return undefined;
  }

  /** Forget cached blocks and affinities (another writer changed them in a way we must see). */
  invalidate(): void {
    this.blocks.clear();
    this.affinities.clear();
  }
}

export type IPFamily = 4 | 6;

/** An IP address as a number, with its family. */
export interface IPAddress {
  readonly family: IPFamily;
  readonly value: bigint;
}

export class InvalidAddressError extends Error {
  readonly code = 'INVALID_ADDRESS';
  constructor(
    readonly input: string,
    readonly reason: string,
  ) {
    super(`invalid address '${input}': ${reason}`);
    this.name = 'InvalidAddressError';
  }
}

export const MAX_V4 = (1n << 32n) - 1n;
export const MAX_V6 = (1n << 128n) - 1n;

export function bitsOf(family: IPFamily): number {
  return family === 4 ? 32 : 128;
}

function parseV4(s: string): bigint | string {
  const parts = s.split('.');
  if (parts.length !== 4) return 'expected four dotted octets';
  let v = 0n;
  for (const p of parts) {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p)) return `bad octet '${p}'`;
    const n = Number(p);
    if (n > 255) return `octet ${n} > 255`;
    v = (v << 8n) | BigInt(n);
  }
  return v;
}

function parseV6(s: string): bigint | string {
  if (s.includes('%')) return 'zone indexes are not allowed';
  let head = s;
  let tailV4: bigint | undefined;
  const lastColon = s.lastIndexOf(':');
  if (s.slice(lastColon + 1).includes('.')) {
    const v4 = parseV4(s.slice(lastColon + 1));
    if (typeof v4 === 'string') return `embedded IPv4: ${v4}`;
    tailV4 = v4;
    head = s.slice(0, lastColon + 1) + '0:0';
  }
  const dbl = head.split('::');
  if (dbl.length > 2) return "more than one '::'";
  const parseGroups = (part: string): number[] | string => {
    if (part === '') return [];
    const out: number[] = [];
    for (const g of part.split(':')) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return `bad group '${g}'`;
      out.push(parseInt(g, 16));
    }
    return out;
  };
  const left = parseGroups(dbl[0]!);
  if (typeof left === 'string') return left;
  let groups: number[];
  if (dbl.length === 2) {
    const right = parseGroups(dbl[1]!);
    if (typeof right === 'string') return right;
    const missing = 8 - left.length - right.length;
    if (missing < 1) return "'::' must stand for at least one group";
    groups = [...left, ...new Array<number>(missing).fill(0), ...right];
  } else {
    groups = left;
  }
  if (groups.length !== 8) return 'expected eight groups';
  let v = 0n;
  for (const g of groups) v = (v << 16n) | BigInt(g);
  if (tailV4 !== undefined) v = (v & ~0xffffffffn) | tailV4;
  return v;
}

/** Parses an IPv4 dotted quad or an IPv6 address (RFC 4291 text forms, no zone). */
export function parseIP(input: string): IPAddress {
  if (typeof input !== 'string' || input.length === 0 || input.length > 45) {
    throw new InvalidAddressError(String(input), 'not an address');
  }
  if (input.includes(':')) {
    const v = parseV6(input);
    if (typeof v === 'string') throw new InvalidAddressError(input, v);
    return { family: 6, value: v };
  }
  const v = parseV4(input);
  if (typeof v === 'string') throw new InvalidAddressError(input, v);
  return { family: 4, value: v };
}

export function isIP(input: string): boolean {
  try {
    parseIP(input);
    return true;
  } catch {
    return false;
  }
}

export function ipFamilyOf(input: string): IPFamily | undefined {
  try {
    return parseIP(input).family;
  } catch {
    return undefined;
  }
}

/** Formats canonically: dotted quad, or RFC 5952 IPv6 (lowercase, longest zero run as '::'). */
export function formatIP(addr: IPAddress): string {
  if (addr.family === 4) {
    const v = addr.value;
    return [24n, 16n, 8n, 0n].map((s) => ((v >> s) & 0xffn).toString()).join('.');
  }
  const groups: number[] = [];
  for (let i = 7; i >= 0; i--) groups.push(Number((addr.value >> BigInt(i * 16)) & 0xffffn));
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}

/** Canonical text of an address given as text (e.g. `2001:DB8::0:1` → `2001:db8::1`). */
export function normalizeIP(input: string): string {
  return formatIP(parseIP(input));
}

export function compareIP(a: IPAddress, b: IPAddress): number {
  if (a.family !== b.family) return a.family - b.family;
  return a.value < b.value ? -1 : a.value > b.value ? 1 : 0;
}

export function addToIP(addr: IPAddress, n: bigint): IPAddress {
  const v = addr.value + n;
  const max = addr.family === 4 ? MAX_V4 : MAX_V6;
  if (v < 0n || v > max)
    throw new RangeError(`address arithmetic out of range: ${formatIP(addr)} + ${n}`);
  return { family: addr.family, value: v };
}

import {
  type IPAddress,
  type IPFamily,
  InvalidAddressError,
  bitsOf,
  formatIP,
  parseIP,
} from './address.js';

/** A network: family, first address and prefix length. */
export interface Cidr {
  readonly family: IPFamily;
  readonly network: bigint;
  readonly prefixLength: number;
}

function mask(family: IPFamily, prefixLength: number): bigint {
  const bits = BigInt(bitsOf(family));
  const all = (1n << bits) - 1n;
  return (all << (bits - BigInt(prefixLength))) & all;
}

/**
 * Parses `a.b.c.d/n` or `x::y/n`. With `strict` (the default) host bits must be zero;
 * otherwise they are cleared. A bare address is not a CIDR.
 */
export function parseCidr(input: string, opts: { strict?: boolean } = {}): Cidr {
  const strict = opts.strict ?? true;
  const slash = input.indexOf('/');
  if (slash < 0) throw new InvalidAddressError(input, "expected '<address>/<prefix length>'");
  const addr = parseIP(input.slice(0, slash));
  const lenText = input.slice(slash + 1);
  if (!/^(0|[1-9][0-9]{0,2})$/.test(lenText))
    throw new InvalidAddressError(input, `bad prefix length '${lenText}'`);
  const prefixLength = Number(lenText);
  if (prefixLength > bitsOf(addr.family)) {
    throw new InvalidAddressError(input, `prefix length ${prefixLength} > ${bitsOf(addr.family)}`);
  }
  const network = addr.value & mask(addr.family, prefixLength);
  if (strict && network !== addr.value) {
    throw new InvalidAddressError(
      input,
      `host bits set (network is ${formatCidr({ family: addr.family, network, prefixLength })})`,
    );
  }
  return { family: addr.family, network, prefixLength };
}

export function isCidr(input: string, opts?: { strict?: boolean }): boolean {
  try {
    parseCidr(input, opts);
    return true;
  } catch {
    return false;
  }
}

export function formatCidr(c: Cidr): string {
  return `${formatIP({ family: c.family, value: c.network })}/${c.prefixLength}`;
}

export function normalizeCidr(input: string): string {
  return formatCidr(parseCidr(input));
}

/** The single-address CIDR of an address (/32 or /128). */
export function hostCidr(addr: IPAddress): Cidr {
  return { family: addr.family, network: addr.value, prefixLength: bitsOf(addr.family) };
}

export function cidrSize(c: Cidr): bigint {
  return 1n << BigInt(bitsOf(c.family) - c.prefixLength);
}

export function firstAddress(c: Cidr): IPAddress {
  return { family: c.family, value: c.network };
}

export function lastAddress(c: Cidr): IPAddress {
  return { family: c.family, value: c.network + cidrSize(c) - 1n };
}

export function cidrContains(c: Cidr, addr: IPAddress): boolean {
  return (
    addr.family === c.family && addr.value >= c.network && addr.value < c.network + cidrSize(c)
  );
}

/** Whether `outer` contains all of `inner`. */
export function cidrContainsCidr(outer: Cidr, inner: Cidr): boolean {
  return (
    outer.family === inner.family &&
    inner.prefixLength >= outer.prefixLength &&
    cidrContains(outer, firstAddress(inner))
  );
}

export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  return cidrContainsCidr(a, b) || cidrContainsCidr(b, a);
}

/** The n-th address of the network (0 = network address). */
export function nthAddress(c: Cidr, n: bigint): IPAddress {
  if (n < 0n || n >= cidrSize(c)) throw new RangeError(`index ${n} outside ${formatCidr(c)}`);
  return { family: c.family, value: c.network + n };
}

/** The sub-networks of `c` with prefix `newPrefix`, in order. */
export function* subnetsOf(c: Cidr, newPrefix: number): Generator<Cidr> {
  if (newPrefix < c.prefixLength || newPrefix > bitsOf(c.family)) {
    throw new RangeError(`cannot split ${formatCidr(c)} into /${newPrefix}`);
  }
  const step = 1n << BigInt(bitsOf(c.family) - newPrefix);
  const end = c.network + cidrSize(c);
  for (let n = c.network; n < end; n += step)
    yield { family: c.family, network: n, prefixLength: newPrefix };
}

/** The `newPrefix` network that contains `addr`. */
export function enclosingCidr(addr: IPAddress, prefixLength: number): Cidr {
  return {
    family: addr.family,
    network: addr.value & mask(addr.family, prefixLength),
    prefixLength,
  };
}

export function compareCidr(a: Cidr, b: Cidr): number {
  if (a.family !== b.family) return a.family - b.family;
  if (a.network !== b.network) return a.network < b.network ? -1 : 1;
  return a.prefixLength - b.prefixLength;
}

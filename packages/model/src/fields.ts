import { z } from 'zod';
import {
  bitsOf,
  isUnicastMac,
  normalizeMac,
  parseCidr,
  formatCidr,
  parseIP,
  formatIP,
  type IPFamily,
} from '@calyx/netaddr';

/** An IP address in any text form; output is canonical text. */
export const ipSchema = z.string({ error: 'must be a string' }).transform((s, ctx) => {
  try {
    return formatIP(parseIP(s));
  } catch {
    ctx.addIssue({ code: 'custom', message: 'is not an IP address', input: s });
    return z.NEVER;
  }
});

export function ipOfFamily(family: IPFamily) {
  return ipSchema.refine((s) => parseIP(s).family === family, {
    error: `is not an IPv${family} address`,
  });
}

/** A CIDR with host bits clear; output canonical. */
export const cidrSchema = z.string({ error: 'must be a string' }).transform((s, ctx) => {
  try {
    return formatCidr(parseCidr(s));
  } catch (e) {
    const reason =
      e instanceof Error && /host bits set/.test(e.message)
        ? e.message.replace(/^invalid address '[^']*': /, 'has ')
        : 'is not a CIDR (address/prefix)';
    ctx.addIssue({ code: 'custom', message: reason, input: s });
    return z.NEVER;
  }
});

/** A CIDR or a bare address (taken as /32 or /128); host bits are cleared, as Neutron does. */
export const prefixSchema = z.string({ error: 'must be a string' }).transform((s, ctx) => {
  try {
    if (!s.includes('/')) {
      const a = parseIP(s);
      return `${formatIP(a)}/${bitsOf(a.family)}`;
    }
    return formatCidr(parseCidr(s, { strict: false }));
  } catch {
    ctx.addIssue({ code: 'custom', message: 'is not an address or CIDR', input: s });
    return z.NEVER;
  }
});

/** A unicast MAC in any common spelling; output lowercase colon form. */
export const macSchema = z.string({ error: 'must be a string' }).transform((s, ctx) => {
  let mac: string;
  try {
    mac = normalizeMac(s);
  } catch {
    ctx.addIssue({ code: 'custom', message: 'is not a MAC address', input: s });
    return z.NEVER;
  }
  if (!isUnicastMac(mac)) {
    ctx.addIssue({ code: 'custom', message: 'is a multicast MAC address', input: s });
    return z.NEVER;
  }
  return mac;
});

export const asNumberSchema = z
  .number({ error: 'must be a number' })
  .int({ error: 'must be an integer' })
  .min(1, { error: 'must be an AS number in 1..4294967295' })
  .max(4294967295, { error: 'must be an AS number in 1..4294967295' });

export const timestampSchema = z.iso.datetime({ error: 'is not an ISO-8601 timestamp' });

export function familyOfCidr(cidr: string): IPFamily {
  return parseCidr(cidr).family;
}

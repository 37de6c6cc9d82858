import { z } from 'zod';
import {
  cidrContains,
  compareIP,
  firstAddress,
  formatIP,
  lastAddress,
  nthAddress,
  parseCidr,
  parseIP,
  addToIP,
  type Cidr,
  type IPAddress,
} from '@calyx/netaddr';
import { idSchema } from './names.js';
import { cidrSchema, ipSchema } from './fields.js';

export const networkSchema = z.strictObject({
  id: idSchema,
  name: z
    .string({ error: 'must be a string' })
    .max(255, { error: 'is longer than 255 characters' })
    .default(''),
  project: z
    .string({ error: 'must be a string' })
    .max(255, { error: 'is longer than 255 characters' })
    .default(''),
  mtu: z
    .number({ error: 'must be a number' })
    .int({ error: 'must be an integer' })
    .min(576, { error: 'must be an MTU in 576..9216' })
    .max(9216, { error: 'must be an MTU in 576..9216' })
    .default(1500),
});
export type Network = z.output<typeof networkSchema>;
export type NetworkInput = z.input<typeof networkSchema>;

const poolSchema = z.strictObject({ start: ipSchema, end: ipSchema });
export type AllocationPool = z.output<typeof poolSchema>;

const hostRouteSchema = z.strictObject({ destination: cidrSchema, nexthop: ipSchema });
export type HostRoute = z.output<typeof hostRouteSchema>;

/** Addresses of a subnet that can never be handed out: network, (IPv4) broadcast. */
function reservedOf(c: Cidr): IPAddress[] {
  return c.family === 4 ? [firstAddress(c), lastAddress(c)] : [firstAddress(c)];
}

/** Default allocation pools: every usable address except the gateway (Neutron's rule). */
export function defaultAllocationPools(cidr: string, gatewayIp: string | null): AllocationPool[] {
  const c = parseCidr(cidr);
  const first = addToIP(firstAddress(c), 1n);
  const last = c.family === 4 ? addToIP(lastAddress(c), -1n) : lastAddress(c);
  if (gatewayIp === null) return [{ start: formatIP(first), end: formatIP(last) }];
  const gw = parseIP(gatewayIp);
  const pools: AllocationPool[] = [];
  if (compareIP(first, gw) < 0)
    pools.push({ start: formatIP(first), end: formatIP(addToIP(gw, -1n)) });
  if (compareIP(gw, last) < 0)
    pools.push({ start: formatIP(addToIP(gw, 1n)), end: formatIP(last) });
  return pools;
}

export const subnetSchema = z
  .strictObject({
    id: idSchema,
    networkId: idSchema,
    name: z
      .string({ error: 'must be a string' })
      .max(255, { error: 'is longer than 255 characters' })
      .default(''),
    cidr: cidrSchema,
    /** Omitted: the first usable address. null: no gateway. */
    gatewayIp: ipSchema.nullable().optional(),
    allocationPools: z.array(poolSchema).max(64, { error: 'has more than 64 pools' }).optional(),
    dnsServers: z.array(ipSchema).max(16, { error: 'has more than 16 entries' }).default([]),
    hostRoutes: z.array(hostRouteSchema).max(64, { error: 'has more than 64 entries' }).default([]),
    enableDhcp: z.boolean({ error: 'must be true or false' }).default(true),
    /** Derived from the CIDR; accepted on input so stored subnets re-validate. */
    ipVersion: z.union([z.literal(4), z.literal(6)], { error: 'must be 4 or 6' }).optional(),
  })
  .superRefine((s, ctx) => {
    const c = parseCidr(s.cidr);
    if (s.ipVersion !== undefined && s.ipVersion !== c.family) {
      ctx.addIssue({
        code: 'custom',
        path: ['ipVersion'],
        input: s.ipVersion,
        message: `does not match ${s.cidr}`,
      });
    }
    const maxPrefix = c.family === 4 ? 30 : 126;
    if (c.prefixLength > maxPrefix) {
      ctx.addIssue({
        code: 'custom',
        path: ['cidr'],
        input: s.cidr,
        message: `is too small for a subnet (prefix longer than /${maxPrefix})`,
      });
      return;
    }
    const reserved = reservedOf(c);
    const isReserved = (a: IPAddress): boolean => reserved.some((r) => compareIP(r, a) === 0);
    const where = `outside ${s.cidr}`;
    if (s.gatewayIp != null) {
      const gw = parseIP(s.gatewayIp);
      if (!cidrContains(c, gw))
        ctx.addIssue({
          code: 'custom',
          path: ['gatewayIp'],
          input: s.gatewayIp,
          message: `is ${where}`,
        });
      else if (isReserved(gw))
        ctx.addIssue({
          code: 'custom',
          path: ['gatewayIp'],
          input: s.gatewayIp,
          message: `is a reserved address of ${s.cidr}`,
        });
    }
    const pools = s.allocationPools ?? [];
    const ranges: { i: number; start: IPAddress; end: IPAddress }[] = [];
    pools.forEach((p, i) => {
      const start = parseIP(p.start);
      const end = parseIP(p.end);
      let ok = true;
      for (const [field, a, text] of [
        ['start', start, p.start],
        ['end', end, p.end],
      ] as const) {
        if (!cidrContains(c, a)) {
          ctx.addIssue({
            code: 'custom',
            path: ['allocationPools', i, field],
            input: text,
            message: `is ${where}`,
          });
          ok = false;
        } else if (isReserved(a)) {
          ctx.addIssue({
            code: 'custom',
            path: ['allocationPools', i, field],
            input: text,
            message: `is a reserved address of ${s.cidr}`,
          });
          ok = false;
        }
      }
      if (ok && compareIP(start, end) > 0) {
        ctx.addIssue({
          code: 'custom',
          path: ['allocationPools', i, 'end'],
          input: p.end,
          message: `is before start ${p.start}`,
        });
        ok = false;
      }
      if (ok) ranges.push({ i, start, end });
    });
    const sorted = [...ranges].sort((a, b) => compareIP(a.start, b.start));
    for (let k = 1; k < sorted.length; k++) {
      const prev = sorted[k - 1]!;
      const cur = sorted[k]!;
      if (compareIP(cur.start, prev.end) <= 0) {
        ctx.addIssue({
          code: 'custom',
          path: ['allocationPools', cur.i],
          input: pools[cur.i],
          message: `overlaps pool ${formatIP(prev.start)}-${formatIP(prev.end)}`,
        });
      }
    }
    if (s.gatewayIp != null) {
      const gw = parseIP(s.gatewayIp);
      for (const r of ranges) {
        if (compareIP(r.start, gw) <= 0 && compareIP(gw, r.end) <= 0) {
          ctx.addIssue({
            code: 'custom',
            path: ['gatewayIp'],
            input: s.gatewayIp,
            message: `is inside allocation pool ${formatIP(r.start)}-${formatIP(r.end)}`,
          });
        }
      }
    }
    s.dnsServers.forEach((d, i) => {
      if (parseIP(d).family !== c.family)
        ctx.addIssue({
          code: 'custom',
          path: ['dnsServers', i],
          input: d,
          message: `is not an IPv${c.family} address`,
        });
    });
    s.hostRoutes.forEach((r, i) => {
      if (parseCidr(r.destination).family !== c.family) {
        ctx.addIssue({
          code: 'custom',
          path: ['hostRoutes', i, 'destination'],
          input: r.destination,
          message: `is not an IPv${c.family} network`,
        });
      }
      if (parseIP(r.nexthop).family !== c.family) {
        ctx.addIssue({
          code: 'custom',
          path: ['hostRoutes', i, 'nexthop'],
          input: r.nexthop,
          message: `is not an IPv${c.family} address`,
        });
      }
    });
  })
  .transform((s) => {
    const c = parseCidr(s.cidr);
    const gatewayIp = s.gatewayIp === undefined ? formatIP(nthAddress(c, 1n)) : s.gatewayIp;
    return {
      ...s,
      ipVersion: c.family,
      gatewayIp,
      allocationPools: s.allocationPools ?? defaultAllocationPools(s.cidr, gatewayIp),
    };
  });
export type Subnet = z.output<typeof subnetSchema>;
export type SubnetInput = z.input<typeof subnetSchema>;

/** Whether an address lies inside one of the subnet's allocation pools. */
export function inAllocationPools(subnet: Pick<Subnet, 'allocationPools'>, ip: string): boolean {
  const a = parseIP(ip);
  return subnet.allocationPools.some((p) => {
    const s = parseIP(p.start);
    return s.family === a.family && compareIP(s, a) <= 0 && compareIP(a, parseIP(p.end)) <= 0;
  });
}

/** Number of addresses the subnet's allocation pools hold. */
export function allocationPoolSize(subnet: Pick<Subnet, 'allocationPools'>): bigint {
  return subnet.allocationPools.reduce(
    (n, p) => n + parseIP(p.end).value - parseIP(p.start).value + 1n,
    0n,
  );
}

import { z } from 'zod';
import { parseCidr, parseIP } from '@calyx/netaddr';
import { idSchema, hostNameSchema } from './names.js';
import { asNumberSchema, cidrSchema, ipOfFamily, ipSchema } from './fields.js';

/** A compute host (or a standalone route reflector) and how it speaks BGP. */
export const hostSchema = z
  .strictObject({
    name: hostNameSchema,
    /** BGP router id and IPv4 session address. */
    ipv4Address: ipOfFamily(4).nullable().default(null),
    ipv6Address: ipOfFamily(6).nullable().default(null),
    /** Overrides the deployment AS for this host. */
    asNumber: asNumberSchema.nullable().default(null),
    /** Set on hosts that act as BGP route reflectors (dotted 32-bit id, BIRD's `rr cluster id`). */
    routeReflectorClusterId: ipOfFamily(4).nullable().default(null),
  })
  .superRefine((h, ctx) => {
    if (h.ipv4Address === null && h.ipv6Address === null) {
      ctx.addIssue({
        code: 'custom',
        path: ['ipv4Address'],
        input: null,
        message: 'is missing: a host needs an IPv4 or IPv6 BGP address',
      });
    }
    if (h.ipv4Address === null && h.routeReflectorClusterId === null && h.ipv6Address !== null) {
      // BIRD needs a 32-bit router id; an IPv6-only host has none to derive it from.
      ctx.addIssue({
        code: 'custom',
        path: ['ipv4Address'],
        input: null,
        message: 'is missing: BIRD needs an IPv4 router id',
      });
    }
  });
export type Host = z.output<typeof hostSchema>;
export type HostInput = z.input<typeof hostSchema>;

const seconds = (min: number, max: number) =>
  z
    .number({ error: 'must be a number' })
    .int({ error: 'must be an integer' })
    .min(min, { error: `must be in ${min}..${max} seconds` })
    .max(max, { error: `must be in ${min}..${max} seconds` });

/** Deployment-wide BGP settings (name `default`). */
export const bgpConfigurationSchema = z.strictObject({
  name: idSchema,
  asNumber: asNumberSchema.default(64512),
  nodeToNodeMesh: z.boolean({ error: 'must be true or false' }).default(true),
  logLevel: z
    .enum(['none', 'info', 'debug'], { error: "must be 'none', 'info' or 'debug'" })
    .default('info'),
  /** Delay between connection attempts (BIRD `connect delay time` / `connect retry time`). */
  connectRetrySeconds: seconds(1, 3600).default(5),
  holdSeconds: seconds(3, 65535).default(90),
  gracefulRestartSeconds: seconds(1, 4095).default(120),
});
export type BgpConfiguration = z.output<typeof bgpConfigurationSchema>;
export type BgpConfigurationInput = z.input<typeof bgpConfigurationSchema>;

/** Printable ASCII without quote or backslash: it is written into BIRD's config. */
const passwordSchema = z
  .string({ error: 'must be a string' })
  .regex(/^[\x21\x23-\x5b\x5d-\x7e]{1,80}$/, {
    error: 'must be 1-80 printable characters without quotes, backslashes or spaces',
  });

/** An explicit BGP peer: global (every host) or for one host. */
export const bgpPeerSchema = z.strictObject({
  name: idSchema,
  /** Null: every host peers with it. */
  host: hostNameSchema.nullable().default(null),
  peerIp: ipSchema,
  asNumber: asNumberSchema,
  password: passwordSchema.nullable().default(null),
  /**
   * `edge`: an external router; told only about pools marked `advertise` (or `pools`).
   * `route-reflector`: an iBGP reflector outside Calyx's hosts; told every endpoint route.
   * `peer`: a plain peer, told every endpoint route.
   */
  role: z
    .enum(['edge', 'route-reflector', 'peer'], {
      error: "must be 'edge', 'route-reflector' or 'peer'",
    })
    .default('peer'),
  /** Names of the pools this peer is told about; null: the role's default. */
  pools: z.array(idSchema).nullable().default(null),
  /** On the hosts' own network segment (BGP `direct`); false for a peer reached through routers (`multihop`). */
  directlyConnected: z.boolean({ error: 'must be true or false' }).default(true),
});
export type BgpPeer = z.output<typeof bgpPeerSchema>;
export type BgpPeerInput = z.input<typeof bgpPeerSchema>;

/** An address pool: where VM addresses come from and how they are routed outside. */
export const ipPoolSchema = z
  .strictObject({
    name: idSchema,
    cidr: cidrSchema,
    /** Prefix length of the blocks hosts claim (default /26 for IPv4, /122 for IPv6). */
    blockSize: z
      .number({ error: 'must be a number' })
      .int({ error: 'must be an integer' })
      .optional(),
    natOutgoing: z.boolean({ error: 'must be true or false' }).default(false),
    /** Announced to edge peers (public pool); private pools never are. */
    advertise: z.boolean({ error: 'must be true or false' }).default(false),
    disabled: z.boolean({ error: 'must be true or false' }).default(false),
    /** The subnet this pool serves, when it is a subnet's own pool. */
    subnetId: idSchema.nullable().default(null),
  })
  .transform((p) => ({
    ...p,
    blockSize: p.blockSize ?? (parseCidr(p.cidr).family === 4 ? 26 : 122),
  }))
  .superRefine((p, ctx) => {
    const c = parseCidr(p.cidr);
    const max = c.family === 4 ? 32 : 128;
    if (p.blockSize < c.prefixLength || p.blockSize > max) {
      ctx.addIssue({
        code: 'custom',
        path: ['blockSize'],
        input: p.blockSize,
        message: `must be in ${c.prefixLength}..${max} for ${p.cidr}`,
      });
    }
    if (max - p.blockSize > 16) {
      ctx.addIssue({
        code: 'custom',
        path: ['blockSize'],
        input: p.blockSize,
        message: `makes blocks of more than 65536 addresses (use /${max - 16} or longer)`,
      });
    }
  });
export type IpPool = z.output<typeof ipPoolSchema>;
export type IpPoolInput = z.input<typeof ipPoolSchema>;

export function familyOfIp(ip: string): 4 | 6 {
  return parseIP(ip).family;
}

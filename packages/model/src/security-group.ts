import { z } from 'zod';
import { parseCidr } from '@calyx/netaddr';
import { idSchema } from './names.js';
import { prefixSchema } from './fields.js';
import { PORT_PROTOCOLS, protocolName } from './protocols.js';

const port = z
  .number({ error: 'must be a number' })
  .int({ error: 'must be an integer' })
  .min(1, { error: 'must be a port in 1..65535' })
  .max(65535, { error: 'must be a port in 1..65535' });
const icmpField = z
  .number({ error: 'must be a number' })
  .int({ error: 'must be an integer' })
  .min(0, { error: 'must be in 0..255' })
  .max(255, { error: 'must be in 0..255' });

/** 'tcp', 'TCP', 6, '6', 'any', null → a protocol name (or decimal number when unnamed), or null for any. */
const protocolSchema = z
  .union([
    z.string({ error: 'must be a protocol name or number' }),
    z.number({ error: 'must be a protocol name or number' }),
  ])
  .nullable()
  .default(null)
  .transform((p, ctx) => {
    if (p === null) return null;
    const text = String(p).trim().toLowerCase();
    if (text === 'any' || text === '' || text === '0') return null;
    const n = /^[0-9]+$/.test(text) ? Number(text) : undefined;
    if (n !== undefined) {
      if (n > 255) {
        ctx.addIssue({ code: 'custom', message: 'is not a protocol number in 0..255', input: p });
        return z.NEVER;
      }
      return protocolName(n) ?? String(n);
    }
    const name = protocolName(text);
    if (!name) {
      ctx.addIssue({
        code: 'custom',
        message: 'is not a known protocol name (use its number)',
        input: p,
      });
      return z.NEVER;
    }
    return name;
  });

export const securityGroupRuleSchema = z
  .strictObject({
    id: idSchema.optional(),
    direction: z.enum(['ingress', 'egress'], { error: "must be 'ingress' or 'egress'" }),
    ethertype: z.enum(['IPv4', 'IPv6'], { error: "must be 'IPv4' or 'IPv6'" }).default('IPv4'),
    protocol: protocolSchema,
    portRangeMin: port.nullable().default(null),
    portRangeMax: port.nullable().default(null),
    icmpType: icmpField.nullable().default(null),
    icmpCode: icmpField.nullable().default(null),
    remoteIpPrefix: prefixSchema.nullable().default(null),
    remoteGroupId: idSchema.nullable().default(null),
    description: z
      .string({ error: 'must be a string' })
      .max(255, { error: 'is longer than 255 characters' })
      .default(''),
  })
  .transform((r) => {
    // 'icmp' in an IPv6 rule means ICMPv6, as in Neutron.
    const protocol = r.protocol === 'icmp' && r.ethertype === 'IPv6' ? 'icmpv6' : r.protocol;
    // A single port given as min only.
    const portRangeMax =
      r.portRangeMin !== null && r.portRangeMax === null ? r.portRangeMin : r.portRangeMax;
    return { ...r, protocol, portRangeMax };
  })
  .superRefine((r, ctx) => {
    const hasPorts = r.portRangeMin !== null || r.portRangeMax !== null;
    if (hasPorts && (r.protocol === null || !PORT_PROTOCOLS.has(r.protocol))) {
      ctx.addIssue({
        code: 'custom',
        path: ['portRangeMin'],
        input: r.portRangeMin,
        message: `needs protocol tcp, udp, sctp, udplite or dccp (protocol is ${r.protocol ?? 'any'})`,
      });
    }
    if (r.portRangeMin === null && r.portRangeMax !== null) {
      ctx.addIssue({
        code: 'custom',
        path: ['portRangeMin'],
        input: null,
        message: 'is missing while portRangeMax is set',
      });
    }
    if (r.portRangeMin !== null && r.portRangeMax !== null && r.portRangeMin > r.portRangeMax) {
      ctx.addIssue({
        code: 'custom',
        path: ['portRangeMax'],
        input: r.portRangeMax,
        message: `is below portRangeMin ${r.portRangeMin}`,
      });
    }
    const isIcmp = r.protocol === 'icmp' || r.protocol === 'icmpv6';
    if ((r.icmpType !== null || r.icmpCode !== null) && !isIcmp) {
      ctx.addIssue({
        code: 'custom',
        path: [r.icmpType !== null ? 'icmpType' : 'icmpCode'],
        input: r.icmpType ?? r.icmpCode,
        message: `needs protocol icmp or icmpv6 (protocol is ${r.protocol ?? 'any'})`,
      });
    }
    if (r.icmpCode !== null && r.icmpType === null) {
      ctx.addIssue({
        code: 'custom',
        path: ['icmpCode'],
        input: r.icmpCode,
        message: 'needs icmpType',
      });
    }
    if (r.protocol === 'icmp' && r.ethertype === 'IPv6') {
      ctx.addIssue({
        code: 'custom',
        path: ['protocol'],
        input: r.protocol,
        message: 'is IPv4-only',
      });
    }
    if (r.protocol === 'icmpv6' && r.ethertype === 'IPv4') {
      ctx.addIssue({
        code: 'custom',
        path: ['protocol'],
        input: r.protocol,
        message: 'is not allowed in an IPv4 rule',
      });
    }
    if (r.remoteIpPrefix !== null && r.remoteGroupId !== null) {
      ctx.addIssue({
        code: 'custom',
        path: ['remoteGroupId'],
        input: r.remoteGroupId,
        message: 'cannot be combined with remoteIpPrefix',
      });
    }
    if (r.remoteIpPrefix !== null) {
      const fam = parseCidr(r.remoteIpPrefix).family;
      if (`IPv${fam}` !== r.ethertype) {
        ctx.addIssue({
          code: 'custom',
          path: ['remoteIpPrefix'],
          input: r.remoteIpPrefix,
          message: `is not an ${r.ethertype} prefix`,
        });
      }
    }
  });
export type SecurityGroupRule = z.output<typeof securityGroupRuleSchema>;
export type SecurityGroupRuleInput = z.input<typeof securityGroupRuleSchema>;

export const securityGroupSchema = z.strictObject({
  id: idSchema,
  name: z
    .string({ error: 'must be a string' })
    .max(255, { error: 'is longer than 255 characters' })
    .default(''),
  project: z
    .string({ error: 'must be a string' })
    .max(255, { error: 'is longer than 255 characters' })
    .default(''),
  rules: z
    .array(securityGroupRuleSchema)
    .max(1000, { error: 'has more than 1000 rules' })
    .default([]),
});
export type SecurityGroup = z.output<typeof securityGroupSchema>;
export type SecurityGroupInput = z.input<typeof securityGroupSchema>;

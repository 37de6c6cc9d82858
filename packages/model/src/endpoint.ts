import { z } from 'zod';
import { idSchema, hostNameSchema, interfaceNameSchema, tapNameFor } from './names.js';
import { ipSchema, macSchema, prefixSchema } from './fields.js';

const fixedIpSchema = z.strictObject({ subnetId: idSchema, ipAddress: ipSchema });
export type FixedIp = z.output<typeof fixedIpSchema>;

const addressPairSchema = z.strictObject({
  ipAddress: prefixSchema,
  macAddress: macSchema.optional(),
});
export type AllowedAddressPair = z.output<typeof addressPairSchema>;

/**
 * A port: one VM interface. Stored under its host once bound (`host` set), so each host
 * watches only its own endpoints.
 */
export const endpointSchema = z
  .strictObject({
    id: idSchema,
    /** The compute host the port is bound to; null while unbound. */
    host: hostNameSchema.nullable().default(null),
    /** The VM (Neutron device_id). */
    workloadId: z
      .string({ error: 'must be a string' })
      .max(255, { error: 'is longer than 255 characters' })
      .default(''),
    networkId: idSchema,
    name: z
      .string({ error: 'must be a string' })
      .max(255, { error: 'is longer than 255 characters' })
      .default(''),
    /** Defaults to `tap` + the first 11 characters of the id. */
    interfaceName: interfaceNameSchema.optional(),
    mac: macSchema,
    fixedIps: z.array(fixedIpSchema).max(32, { error: 'has more than 32 addresses' }).default([]),
    securityGroupIds: z.array(idSchema).max(64, { error: 'has more than 64 groups' }).default([]),
    allowedAddressPairs: z
      .array(addressPairSchema)
      .max(64, { error: 'has more than 64 pairs' })
      .default([]),
    adminStateUp: z.boolean({ error: 'must be true or false' }).default(true),
    /** Off: no anti-spoofing and no security groups (Neutron's port_security_enabled). */
    portSecurityEnabled: z.boolean({ error: 'must be true or false' }).default(true),
  })
  .superRefine((e, ctx) => {
    const seen = new Map<string, number>();
    e.fixedIps.forEach((f, i) => {
      const prev = seen.get(f.ipAddress);
      if (prev !== undefined)
        ctx.addIssue({
          code: 'custom',
          path: ['fixedIps', i, 'ipAddress'],
          input: f.ipAddress,
          message: `is listed twice (also fixedIps[${prev}])`,
        });
      seen.set(f.ipAddress, i);
    });
    const groups = new Set<string>();
    e.securityGroupIds.forEach((g, i) => {
      if (groups.has(g))
        ctx.addIssue({
          code: 'custom',
          path: ['securityGroupIds', i],
          input: g,
          message: 'is listed twice',
        });
      groups.add(g);
    });
  })
  .transform((e) => ({ ...e, interfaceName: e.interfaceName ?? tapNameFor(e.id) }));
export type Endpoint = z.output<typeof endpointSchema>;
export type EndpointInput = z.input<typeof endpointSchema>;

/** Where an endpoint is stored: lets a port be found by id alone. */
export const endpointLocationSchema = z.strictObject({
  id: idSchema,
  host: hostNameSchema.nullable(),
});
export type EndpointLocation = z.output<typeof endpointLocationSchema>;

import { z } from 'zod';
import { cidrSize, parseCidr } from '@calyx/netaddr';
import { hostNameSchema } from './names.js';
import { cidrSchema } from './fields.js';

const ordinal = z.number().int().min(0);

/** Handles name what an allocation belongs to (one per port), so release is exact. */
export const HANDLE_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,255}$/;
const handleIdSchema = z
  .string({ error: 'must be a string' })
  .regex(HANDLE_PATTERN, { error: 'is not a valid handle id' });

/**
 * A block of addresses (Calico's AllocationBlock): `allocations[i]` is the index in
 * `attributes` of whoever holds address i, or null when free. Every change bumps
 * `sequenceNumber`; `sequenceNumberForAllocation[i]` records the sequence at which address
 * i was handed out, so a stale release cannot free an address reused meanwhile.
 */
export const ipamBlockSchema = z
  .strictObject({
    cidr: cidrSchema,
    pool: z.string(),
    affinity: hostNameSchema.nullable(),
    allocations: z.array(ordinal.nullable()),
    unallocated: z.array(ordinal),
    attributes: z.array(
      z.strictObject({
        handleId: handleIdSchema.nullable(),
        secondary: z.record(z.string(), z.string()).default({}),
      }),
    ),
    sequenceNumber: z.number().int().min(0),
    sequenceNumberForAllocation: z.record(z.string(), z.number().int().min(0)).default({}),
  })
  .superRefine((b, ctx) => {
    const size = Number(cidrSize(parseCidr(b.cidr)));
    if (b.allocations.length !== size) {
      ctx.addIssue({
        code: 'custom',
        path: ['allocations'],
        input: b.allocations.length,
        message: `must have ${size} entries for ${b.cidr}`,
      });
    }
    b.allocations.forEach((a, i) => {
      if (a !== null && a >= b.attributes.length) {
        ctx.addIssue({
          code: 'custom',
          path: ['allocations', i],
          input: a,
          message: 'points past the attributes',
        });
      }
    });
  });
export type IpamBlock = z.output<typeof ipamBlockSchema>;

export const ipamHandleSchema = z.strictObject({
  handleId: handleIdSchema,
  /** Block CIDR → number of addresses this handle holds there. */
  blocks: z.record(z.string(), z.number().int().min(1)),
});
export type IpamHandle = z.output<typeof ipamHandleSchema>;

export const blockAffinitySchema = z.strictObject({
  host: hostNameSchema,
  cidr: cidrSchema,
  state: z.enum(['pending', 'confirmed', 'pendingDeletion']),
});
export type BlockAffinity = z.output<typeof blockAffinitySchema>;
export { handleIdSchema };

import { z } from 'zod';
import { hostNameSchema, idSchema } from './names.js';
import { timestampSchema } from './fields.js';

/** What an agent reports about one of its endpoints. */
export const endpointStatusSchema = z.strictObject({
  endpointId: idSchema,
  host: hostNameSchema,
  status: z.enum(['up', 'down', 'error']),
  reason: z.string().max(1024).default(''),
  /**
   * The revision of the Endpoint record this report describes (its modRevision, in decimal):
   * a report older than the endpoint is stale. Absent from agents that do not say.
   */
  endpointRevision: z
    .string()
    .regex(/^[0-9]{1,20}$/, 'a revision in decimal')
    .optional(),
  updatedAt: timestampSchema,
});
export type EndpointStatus = z.output<typeof endpointStatusSchema>;
export type EndpointStatusInput = z.input<typeof endpointStatusSchema>;

/** An agent's liveness record, kept on a lease so it vanishes when the agent dies. */
export const hostStatusSchema = z.strictObject({
  host: hostNameSchema,
  agent: z.string().max(64).default('agent'),
  version: z.string().max(64).default(''),
  startedAt: timestampSchema,
  updatedAt: timestampSchema,
  inSync: z.boolean(),
  endpoints: z.number().int().min(0).default(0),
});
export type HostStatus = z.output<typeof hostStatusSchema>;
export type HostStatusInput = z.input<typeof hostStatusSchema>;

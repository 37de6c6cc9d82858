import { z } from 'zod';

/** Where a program serves /livez, /readyz and /metrics, or `false` for nowhere. */
export const healthSettingsSchema = (defaultPort: number) =>
  z
    .union([
      z.literal(false),
      z.strictObject({
        host: z.string().min(1).default('127.0.0.1'),
        port: z.number().int().min(0).max(65535).default(defaultPort),
      }),
    ])
    .default({ host: '127.0.0.1', port: defaultPort });

export const logLevelSchema = z
  .enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal'])
  .default('info');

export const hostNameSettingSchema = z
  .string()
  .regex(/^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/, 'not a valid host name');

export const datastoreUrlSchema = z.string().min(1, 'a datastore URL is required');

/**
 * The health setting from `--no-health` / `--health-address host:port` (IPv6 in brackets);
 * undefined when neither flag was given.
 */
export function healthFromFlags(flags: {
  noHealth?: boolean | undefined;
  address?: string | undefined;
}): false | { host: string; port: number } | undefined {
  if (flags.noHealth) return false;
  if (flags.address === undefined) return undefined;
  const i = flags.address.lastIndexOf(':');
  return {
    host: flags.address.slice(0, i).replace(/^\[|\]$/g, ''),
    port: Number(flags.address.slice(i + 1)),
  };
}

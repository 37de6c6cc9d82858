import type { z } from 'zod';
import { ValidationError, type ValidationIssue } from './errors.js';
import { keys, prefixes } from './keys.js';
import { networkSchema, subnetSchema } from './network.js';
import { endpointLocationSchema, endpointSchema } from './endpoint.js';
import { securityGroupSchema } from './security-group.js';
import { bgpConfigurationSchema, bgpPeerSchema, hostSchema, ipPoolSchema } from './bgp.js';
import { blockAffinitySchema, ipamBlockSchema, ipamHandleSchema } from './ipam.js';
import { endpointStatusSchema, hostStatusSchema } from './status.js';

interface KindDef<S extends z.ZodType> {
  schema: S;
  /** The key a valid resource is stored under. */
  keyOf(r: z.output<S>): string;
  /** The field that names a resource (for messages). */
  idField: string;
  /** Prefixes that together hold every resource of the kind. */
  listPrefixes: readonly string[];
}

function def<S extends z.ZodType>(d: KindDef<S>): KindDef<S> {
  return d;
}

/** Every stored kind: its schema, its key, where to list it. */
export const KINDS = {
  Network: def({
    schema: networkSchema,
    keyOf: (r) => keys.network(r.id),
    idField: 'id',
    listPrefixes: [prefixes.network],
  }),
  Subnet: def({
    schema: subnetSchema,
    keyOf: (r) => keys.subnet(r.id),
    idField: 'id',
    listPrefixes: [prefixes.subnet],
  }),
  SecurityGroup: def({
    schema: securityGroupSchema,
    keyOf: (r) => keys.securityGroup(r.id),
    idField: 'id',
    listPrefixes: [prefixes.securityGroup],
  }),
  Endpoint: def({
    schema: endpointSchema,
    keyOf: (r) => keys.endpoint(r.host, r.id),
    idField: 'id',
    listPrefixes: [prefixes.boundEndpoints, prefixes.unboundEndpoints],
  }),
  EndpointLocation: def({
    schema: endpointLocationSchema,
    keyOf: (r) => keys.endpointLocation(r.id),
    idField: 'id',
    listPrefixes: [prefixes.endpointLocation],
  }),
  Host: def({
    schema: hostSchema,
    keyOf: (r) => keys.host(r.name),
    idField: 'name',
    listPrefixes: [prefixes.host],
  }),
  BgpConfiguration: def({
    schema: bgpConfigurationSchema,
    keyOf: (r) => keys.bgpConfiguration(r.name),
    idField: 'name',
    listPrefixes: [prefixes.bgpConfiguration],
  }),
  BgpPeer: def({
    schema: bgpPeerSchema,
    keyOf: (r) => keys.bgpPeer(r.name),
    idField: 'name',
    listPrefixes: [prefixes.bgpPeer],
  }),
  IpPool: def({
    schema: ipPoolSchema,
    keyOf: (r) => keys.ipPool(r.name),
    idField: 'name',
    listPrefixes: [prefixes.ipPool],
  }),
  IpamBlock: def({
    schema: ipamBlockSchema,
    keyOf: (r) => keys.ipamBlock(r.cidr),
    idField: 'cidr',
    listPrefixes: [prefixes.ipamBlock],
  }),
  IpamHandle: def({
    schema: ipamHandleSchema,
    keyOf: (r) => keys.ipamHandle(r.handleId),
    idField: 'handleId',
    listPrefixes: [prefixes.ipamHandle],
  }),
  BlockAffinity: def({
    schema: blockAffinitySchema,
    keyOf: (r) => keys.blockAffinity(r.host, r.cidr),
    idField: 'cidr',
    listPrefixes: [prefixes.blockAffinity],
  }),
  EndpointStatus: def({
    schema: endpointStatusSchema,
    keyOf: (r) => keys.endpointStatus(r.host, r.endpointId),
    idField: 'endpointId',
    listPrefixes: [prefixes.status],
  }),
  HostStatus: def({
    schema: hostStatusSchema,
    keyOf: (r) => keys.hostStatus(r.host),
    idField: 'host',
    listPrefixes: [prefixes.status],
  }),
} as const;

export type Kind = keyof typeof KINDS;
export type ResourceOf<K extends Kind> = z.output<(typeof KINDS)[K]['schema']>;
export type InputOf<K extends Kind> = z.input<(typeof KINDS)[K]['schema']>;
export const KIND_NAMES = Object.keys(KINDS) as Kind[];

export function isKind(s: string): s is Kind {
  return Object.prototype.hasOwnProperty.call(KINDS, s);
}

function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let v: unknown = input;
  for (const p of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<PropertyKey, unknown>)[p];
  }
  return v;
}

function fieldName(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else out += out ? `.${String(p)}` : String(p);
  }
  return out;
}

/** Turns zod issues into Calyx issues: field, value as given, and a predicate about it. */
export function toValidationIssues(
  error: z.ZodError,
  input: unknown,
  kind: string,
): ValidationIssue[] {
  const out: ValidationIssue[] = [];
  for (const issue of error.issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const k of issue.keys) {
        const path = [...issue.path, k];
        out.push({
          field: fieldName(path),
          value: valueAt(input, path),
          problem: `is not a field of ${kind}`,
        });
      }
      continue;
    }
    const raw = valueAt(input, issue.path);
    const value = 'input' in issue && issue.input !== undefined ? issue.input : raw;
    const missing = raw === undefined && issue.code === 'invalid_type';
    if (issue.path.length === 0 && issue.code === 'invalid_type') {
      out.push({
        field: '',
        value: input,
        problem: `must be an object (got ${input === null ? 'null' : typeof input})`,
      });
      continue;
    }
    out.push({
      field: fieldName(issue.path),
      value,
      problem: missing ? 'is missing' : issue.message,
    });
  }
  return out;
}

function idOf(kind: Kind, input: unknown): string | undefined {
  const v = valueAt(input, [KINDS[kind].idField]);
  return typeof v === 'string' ? v : undefined;
}

export type ParseResult<T> = { ok: true; value: T } | { ok: false; error: ValidationError };

export function safeParseResource<K extends Kind>(
  kind: K,
  input: unknown,
): ParseResult<ResourceOf<K>> {
  const r = KINDS[kind].schema.safeParse(input);
  if (r.success) return { ok: true, value: r.data as ResourceOf<K> };
  return {
    ok: false,
    error: new ValidationError(kind, idOf(kind, input), toValidationIssues(r.error, input, kind)),
  };
}

/** Validates and normalises a resource; throws ValidationError naming resource, field and value. */
export function parseResource<K extends Kind>(kind: K, input: unknown): ResourceOf<K> {
  const r = safeParseResource(kind, input);
  if (!r.ok) throw r.error;
  return r.value;
}

export function keyOf<K extends Kind>(kind: K, resource: ResourceOf<K>): string {
  return (KINDS[kind].keyOf as (r: ResourceOf<K>) => string)(resource);
}

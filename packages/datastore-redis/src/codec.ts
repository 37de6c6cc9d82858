import {
  DatastoreError,
  UnavailableError,
  type KeyValue,
  type LeaseId,
  type Revision,
  type WatchEvent,
} from '@calyx/datastore';

/** A lease field as stored (`0` = none). */
export function leaseOf(raw: string): LeaseId | null {
  return raw === '0' || raw === '' ? null : BigInt(raw);
}

/** `[value, create, mod, version, lease]` as the script returns a key. */
export function toKeyValue(key: string, raw: readonly unknown[], offset = 0): KeyValue {
  return {
    key,
    value: String(raw[offset]),
    createRevision: BigInt(String(raw[offset + 1])),
    modRevision: BigInt(String(raw[offset + 2])),
    version: BigInt(String(raw[offset + 3])),
    lease: leaseOf(String(raw[offset + 4])),
  };
}

/** The revision of a stream entry id `<rev>-0`. */
export function entryRevision(id: Buffer | string): Revision {
  const s = typeof id === 'string' ? id : id.toString('latin1');
  const dash = s.indexOf('-');
  return BigInt(dash < 0 ? s : s.slice(0, dash));
}

/** A stream entry's fields: its events, its token and the previous entry's (see script.ts). */
export interface EntryFields {
  events: Buffer;
  token: string;
  prevToken: string;
}

export function entryFields(fields: readonly Buffer[]): EntryFields {
  let events: Buffer | undefined;
  let token = '';
  let prevToken = '';
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const name = fields[i]!.toString('latin1');
    if (name === 'e') events = fields[i + 1]!;
    else if (name === 't') token = fields[i + 1]!.toString('latin1');
    else if (name === 'p') prevToken = fields[i + 1]!.toString('latin1');
  }
  if (!events) throw new Error('stream entry without events');
  return { events, token, prevToken };
}

/**
 * The events of one revision (the script's encoding, see script.ts), only those whose key
 * passes `wanted`, with or without previous values. Values are decoded only for wanted keys.
 */
export function decodeEvents(
  rev: Revision,
  blob: Buffer,
  wanted: (key: string) => boolean,
  prevKv: boolean,
): WatchEvent[] {
  const out: WatchEvent[] = [];
  let pos = 0;
  while (pos < blob.length) {
    const nl = blob.indexOf(0x0a, pos);
    if (nl < 0) throw new Error(`corrupt event at revision ${rev}`);
    const h = blob.toString('latin1', pos, nl).split(' ');
    if (h.length !== 12) throw new Error(`corrupt event header at revision ${rev}`);
    pos = nl + 1;
    const klen = Number(h[1]);
    const vlen = Number(h[2]);
    const hasPrev = h[6] === '1';
    const pvlen = hasPrev ? Number(h[7]) : 0;
    const key = blob.toString('utf8', pos, pos + klen);
    const vAt = pos + klen;
    const pAt = vAt + vlen;
    pos = pAt + pvlen;
    if (pos > blob.length) throw new Error(`truncated event at revision ${rev}`);
    if (!wanted(key)) continue;
    const prev: KeyValue | undefined =
      hasPrev && prevKv
        ? {
            key,
            value: blob.toString('utf8', pAt, pAt + pvlen),
            createRevision: BigInt(h[8]!),
            modRevision: BigInt(h[9]!),
            version: BigInt(h[10]!),
            lease: leaseOf(h[11]!),
          }
        : undefined;
    if (h[0] === 'p') {
      out.push({
        type: 'put',
        kv: {
          key,
          value: blob.toString('utf8', vAt, vAt + vlen),
          createRevision: BigInt(h[3]!),
          modRevision: rev,
          version: BigInt(h[4]!),
          lease: leaseOf(h[5]!),
        },
        prev,
      });
    } else {
      out.push({ type: 'delete', key, revision: rev, prev });
    }
  }
  return out;
}

const UNAVAILABLE =
  /Connection is closed|Command timed out|Stream isn't writeable|max retries per request|Command aborted due to connection close|connect ETIMEDOUT|ECONNREFUSED|ECONNRESET|EPIPE|EHOSTUNREACH|ENETUNREACH|ENOTFOUND|EAI_AGAIN|All sentinels are unreachable|^LOADING|^READONLY|^MASTERDOWN|^TRYAGAIN|^CLUSTERDOWN|^BUSY |^NOREPLICAS|Socket timeout/;

/**
 * Turns an ioredis/Redis error into the contract's typed errors where the meaning is known
 * (unreachable or not serving: `UnavailableError`; refused credentials or commands:
 * `PERMISSION_DENIED`; out of memory: `RESOURCE_EXHAUSTED`); anything else is returned as is.
 */
export function mapError(e: unknown): unknown {
  if (e instanceof DatastoreError) return e;
  const msg = e instanceof Error ? e.message : String(e);
  const name = e instanceof Error ? e.name : '';
  if (/^(NOAUTH|WRONGPASS|NOPERM)/.test(msg) || /invalid (username|password)/i.test(msg))
    return new DatastoreError('PERMISSION_DENIED', `redis refused: ${msg}`, { cause: e });
  if (/^OOM /.test(msg))
    return new DatastoreError('RESOURCE_EXHAUSTED', `redis is out of memory: ${msg}`, {
      cause: e,
    });
  if (name === 'MaxRetriesPerRequestError' || name === 'AbortError' || UNAVAILABLE.test(msg))
    return new UnavailableError(`redis unavailable: ${msg}`, { cause: e });
  return e;
}

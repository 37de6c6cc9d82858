import { KINDS, keys, parseKey, type Kind, type ResourceOf } from '@calyx/model';
import { ResourceClient, encodeResource, type Datastore, type KeyValue } from '@calyx/datastore';
import { mapLimit } from '../concurrency.js';
import type { CliContext } from '../context.js';
import type { ResourceDocument } from '../documents.js';
import type { Unit, Write } from '../writer.js';
import { readValidDocuments, writeUnits, type Register } from './shared.js';

export interface DocUnit extends Unit {
  doc: ResourceDocument;
}

/** Reads in flight while planning. */
const READ_CONCURRENCY = 16;

/**
 * Plans create-or-update writes from current reads. Each write carries a compare (the key is
 * absent, or still at the revision read), so a concurrent change makes the transaction fail
 * instead of being overwritten.
 */
export class ApplyPlanner {
  private endpointIndex: Promise<Map<string, KeyValue[]>> | undefined;

  constructor(private readonly store: Datastore) {}

  /** Every stored endpoint record by id (normally one; a stray copy under another host too). */
  private endpoints(): Promise<Map<string, KeyValue[]>> {
    this.endpointIndex ??= (async () => {
      const index = new Map<string, KeyValue[]>();
      for (const prefix of KINDS.Endpoint.listPrefixes) {
        for (const kv of (await this.store.list(prefix)).items) {
          let id: string;
          try {
            const p = parseKey(kv.key);
            if (p.kind !== 'Endpoint') continue;
            id = p.id;
          } catch {
            continue;
          }
          index.set(id, [...(index.get(id) ?? []), kv]);
        }
      }
      return index;
    })();
    return this.endpointIndex;
  }

  async plan(doc: ResourceDocument): Promise<DocUnit> {
    const label = `${doc.kind} ${doc.id}`;
    if (doc.kind === 'Endpoint') return this.planEndpoint(doc as ResourceDocument<'Endpoint'>);
    const cur = await this.store.get(doc.key);
    const write = upsert(doc.kind, doc.value, cur);
    return {
      doc,
      label,
      writes: write ? [write] : [],
      outcome: !cur ? 'created' : write ? 'configured' : 'unchanged',
    };
  }

  /** An endpoint, its location record, and the removal of its copy under a previous host. */
  private async planEndpoint(doc: ResourceDocument<'Endpoint'>): Promise<DocUnit> {
    const ep = doc.value;
    const [existing, loc] = await Promise.all([
      this.endpoints().then((m) => m.get(ep.id) ?? []),
      this.store.get(keys.endpointLocation(ep.id)),
    ]);
    const here = existing.find((kv) => kv.key === doc.key);
    const elsewhere = existing.filter((kv) => kv.key !== doc.key);
    const writes: Write[] = [];
    const epWrite = upsert('Endpoint', ep, here);
    if (epWrite) writes.push(epWrite);
    for (const kv of elsewhere)
      writes.push({
        op: 'delete',
        kind: 'Endpoint',
        key: kv.key,
        expectedModRevision: kv.modRevision,
      });
    const locWrite = upsert('EndpointLocation', { id: ep.id, host: ep.host }, loc);
    if (locWrite) writes.push(locWrite);
    const from = elsewhere.map((kv) => {
      const p = parseKey(kv.key);
      return p.kind === 'Endpoint' ? (p.host ?? '(unbound)') : kv.key;
    });
    const outcome =
      !here && !elsewhere.length
        ? 'created'
        : writes.length === 0
          ? 'unchanged'
          : from.length
            ? `configured (moved from ${from.join(', ')} to ${ep.host ?? '(unbound)'})`
            : 'configured';
    return { doc, label: `Endpoint ${ep.id}`, writes, outcome };
  }

  planAll(docs: readonly ResourceDocument[], tick?: () => void): Promise<DocUnit[]> {
    return mapLimit(docs, READ_CONCURRENCY, async (d) => {
      const u = await this.plan(d);
      tick?.();
      return u;
    });
  }
}

/** JSON text with object keys sorted: equal for equal values whatever the key order. */
function canonical(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) =>
    x !== null && typeof x === 'object' && !Array.isArray(x)
      ? Object.fromEntries(Object.entries(x).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : x,
  );
}

/** Whether a stored value already holds `value` (schemas may order keys differently on re-parse). */
function sameJson(stored: string, value: unknown): boolean {
  if (stored === encodeResource(value)) return true;
  try {
    return canonical(JSON.parse(stored)) === canonical(value);
  } catch {
    return false;
  }
}

/** The write that makes `key` hold `value`: a create, a conditional update, or none. */
function upsert(kind: Kind, value: ResourceOf<Kind>, cur: KeyValue | undefined): Write | undefined {
  if (!cur) return { op: 'create', kind, value };
  if (sameJson(cur.value, value)) return undefined;
  return { op: 'update', kind, value, expectedModRevision: cur.modRevision };
}

export async function applyDocuments(
  ctx: CliContext,
  file: string,
  opts: { dryRun?: boolean },
): Promise<number> {
  const docs = await readValidDocuments(ctx, file, 'written');
  if (typeof docs === 'number') return docs;
  const store = await ctx.store();
  const client = new ResourceClient(store);
  const reading = ctx.progress('reading', docs.length);
  const units = await new ApplyPlanner(store).planAll(docs, () => reading.tick());
  reading.done();
  return writeUnits(
    ctx,
    client,
    units,
    (chunk) => new ApplyPlanner(store).planAll((chunk as DocUnit[]).map((u) => u.doc)),
    { progressLabel: 'applying', ...(opts.dryRun ? { dryRun: true } : {}) },
  );
}

export const registerApply: Register = (program, act) => {
  program
    .command('apply')
    .description(
      'Create or update the resources of a file (YAML documents, or JSON: an object or an array); ' +
        'every document is validated first, and nothing is written unless all are valid',
    )
    .requiredOption('-f, --filename <file>', 'the file, or - for standard input')
    .option('--dry-run', 'validate and show what would change, write nothing')
    .action(
      act((ctx, _args, opts) =>
        applyDocuments(ctx, opts.filename as string, { dryRun: opts.dryRun === true }),
      ),
    );
};

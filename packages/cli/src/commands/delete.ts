import { keys, type Kind } from '@calyx/model';
import type { ResourceClient, KeyValue } from '@calyx/datastore';
import { mapLimit } from '../concurrency.js';
import type { CliContext } from '../context.js';
import { EXIT, UsageError } from '../exit-codes.js';
import { DERIVED_KINDS, findById, resolveKind } from '../kinds.js';
import type { Unit, Write } from '../writer.js';
import { readValidDocuments, writeUnits, type Register } from './shared.js';

/** What to delete: a resource by id, or (from a file) by its exact key. */
export interface DeleteTarget {
  kind: Kind;
  id: string;
  key?: string;
}

interface TargetUnit extends Unit {
  target: DeleteTarget;
  found: boolean;
}

const removal = (kind: Kind, kv: Pick<KeyValue, 'key' | 'modRevision'>): Write => ({
  op: 'delete',
  kind,
  key: kv.key,
  expectedModRevision: kv.modRevision,
});

/** The deletes a target needs now; an endpoint takes its location record along. */
async function planDelete(client: ResourceClient, t: DeleteTarget): Promise<TargetUnit> {
  const label = `${t.kind} ${t.id}`;
  const writes: Write[] = [];
  if (t.kind === 'Endpoint') {
    const [copies, loc] = await Promise.all([
      findById(client, 'Endpoint', t.id),
      client.store.get(keys.endpointLocation(t.id)),
    ]);
    for (const c of copies) writes.push(removal('Endpoint', c));
    if (loc) writes.push(removal('EndpointLocation', loc));
  } else if (t.key !== undefined) {
    const kv = await client.store.get(t.key);
    if (kv) writes.push(removal(t.kind, kv));
  } else {
    for (const s of await findById(client, t.kind, t.id)) writes.push(removal(t.kind, s));
  }
  return { target: t, label, writes, found: writes.length > 0, outcome: 'deleted' };
}

const planAll = (client: ResourceClient, targets: readonly DeleteTarget[]) =>
  mapLimit(targets, 16, (t) => planDelete(client, t));

export async function deleteResources(
  ctx: CliContext,
  targets: readonly DeleteTarget[],
  opts: { ignoreNotFound?: boolean; dryRun?: boolean },
): Promise<number> {
  const client = await ctx.client();
  const units = await planAll(client, targets);
  const missing = units.filter((u) => !u.found);
  if (missing.length && !opts.ignoreNotFound) {
    for (const u of missing) ctx.err(`${u.label} not found`);
    ctx.err(`nothing was deleted (--ignore-not-found deletes the others)`);
    return EXIT.NOT_FOUND;
  }
  for (const u of missing) ctx.err(`${u.label} not found (ignored)`);
  return writeUnits(
    ctx,
    client,
    units.filter((u) => u.found),
    async (chunk) =>
      (
        await planAll(
          client,
          (chunk as TargetUnit[]).map((u) => u.target),
        )
      ).map((u) => (u.found ? u : { ...u, outcome: 'already deleted' })),
    { progressLabel: 'deleting', ...(opts.dryRun ? { dryRun: true } : {}) },
  );
}

async function deleteCommand(
  ctx: CliContext,
  kindWord: string | undefined,
  ids: readonly string[],
  opts: Record<string, unknown>,
): Promise<number> {
  const file = opts.filename as string | undefined;
  const flags = {
    ignoreNotFound: opts.ignoreNotFound === true,
    dryRun: opts.dryRun === true,
  };
  if (file !== undefined) {
    if (kindWord !== undefined)
      throw new UsageError('delete takes either -f <file> or <kind> <id…>, not both');
    const docs = await readValidDocuments(ctx, file, 'deleted');
    if (typeof docs === 'number') return docs;
    return deleteResources(
      ctx,
      docs.map((d) => ({
        kind: d.kind,
        id: d.id,
        ...(d.kind === 'Endpoint' ? {} : { key: d.key }),
      })),
      flags,
    );
  }
  if (kindWord === undefined || !ids.length)
    throw new UsageError('delete needs <kind> <id…> or -f <file>');
  const kind = resolveKind(kindWord);
  if (DERIVED_KINDS.has(kind))
    throw new UsageError(`${kind} records go with their Endpoint: delete the Endpoint`);
  return deleteResources(
    ctx,
    ids.map((id) => ({ kind, id })),
    flags,
  );
}

export const registerDelete: Register = (program, act) => {
  program
    .command('delete')
    .description(
      'Delete resources by kind and id, or those of a file; nothing is deleted if any is missing',
    )
    .argument('[kind]', 'a kind (as for get)')
    .argument('[ids...]', 'ids, names or CIDRs')
    .option('-f, --filename <file>', 'delete the resources of this file (- for standard input)')
    .option('--ignore-not-found', 'delete what exists, report the rest, exit 0')
    .option('--dry-run', 'show what would be deleted, delete nothing')
    .action(
      act((ctx, [kind, ids], opts) =>
        deleteCommand(ctx, kind as string | undefined, (ids as string[] | undefined) ?? [], opts),
      ),
    );
};

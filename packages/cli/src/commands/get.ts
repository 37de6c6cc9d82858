import { KIND_NAMES, ValidationError, type Kind, type ResourceOf } from '@calyx/model';
import { ResourceClient, type Revision } from '@calyx/datastore';
import type { CliContext } from '../context.js';
import { EXIT, UsageError } from '../exit-codes.js';
import { renderResources, type KindGroup } from '../format/output.js';
import { NOT_IN_ALL, findById, hostOf, resolveKind } from '../kinds.js';
import { listKind } from '../read.js';
import { formatOf, outputOption, reportInvalid, type Register } from './shared.js';

/** Kinds that belong to one host, and so take `--host`. */
const HOSTED: ReadonlySet<Kind> = new Set<Kind>([
  'Endpoint',
  'EndpointLocation',
  'Host',
  'BgpPeer',
  'IpamBlock',
  'BlockAffinity',
  'EndpointStatus',
  'HostStatus',
]);

function onHost(kind: Kind, r: ResourceOf<Kind>, host: string): boolean {
  if (kind === 'Host') return (r as ResourceOf<'Host'>).name === host;
  if (kind === 'IpamBlock') return (r as ResourceOf<'IpamBlock'>).affinity === host;
  return hostOf(r) === host;
}

export async function getResources(
  ctx: CliContext,
  kindWord: string,
  ids: readonly string[],
  opts: Record<string, unknown>,
): Promise<number> {
  const format = formatOf(opts);
  const host = opts.host as string | undefined;
  const all = kindWord.toLowerCase() === 'all';
  const kinds: Kind[] = all
    ? KIND_NAMES.filter((k) => !NOT_IN_ALL.has(k))
    : [resolveKind(kindWord)];
  if (all && ids.length) throw new UsageError('get all takes no ids');
  if (host !== undefined && !all && !HOSTED.has(kinds[0]!))
    throw new UsageError(`--host: ${kinds[0]} resources do not belong to a host`);
  const store = await ctx.store();
  const client = new ResourceClient(store);
  const groups: KindGroup[] = [];
  let code: number = EXIT.OK;
  const keep = (kind: Kind, items: ResourceOf<Kind>[]): ResourceOf<Kind>[] =>
    host === undefined || !HOSTED.has(kind) ? items : items.filter((r) => onHost(kind, r, host));
  if (ids.length) {
    const kind = kinds[0]!;
    const items: ResourceOf<Kind>[] = [];
    for (const id of ids) {
      try {
        const found = await findById(client, kind, id);
        if (!found.length) {
          ctx.err(`${kind} ${id} not found`);
          code = EXIT.NOT_FOUND;
        }
        items.push(...found.map((s) => s.value));
      } catch (e) {
        if (!(e instanceof ValidationError)) throw e;
        ctx.err(`${kind} ${id}: the stored value is invalid: ${e.message}`);
        if (code === EXIT.OK) code = EXIT.FAILURE;
      }
    }
    groups.push({ kind, items: keep(kind, items) });
  } else {
    let revision: Revision | undefined;
    for (const kind of kinds) {
      const r = await listKind(store, kind, revision === undefined ? {} : { revision });
      revision ??= r.revision;
      if (reportInvalid(ctx, r.invalid) && code === EXIT.OK) code = EXIT.FAILURE;
      groups.push({
        kind,
        items: keep(
          kind,
          r.items.map((s) => s.value),
        ),
      });
    }
  }
  const total = groups.reduce((n, g) => n + g.items.length, 0);
  if (format === 'table' && total === 0) {
    if (!ids.length) ctx.err(`no ${all ? '' : `${kinds[0]} `}resources found`);
    return code;
  }
  ctx.out(renderResources(groups, format, { single: ids.length === 1 }));
  return code;
}

export const registerGet: Register = (program, act) => {
  program
    .command('get')
    .description(
      'Show resources of a kind (all of them, or those named), or `all` (every kind but status records)',
    )
    .argument('<kind>', `a kind (${KIND_NAMES.join(', ')}; case and plurals ignored) or all`)
    .argument('[ids...]', 'ids, names or CIDRs; every resource of the kind when none')
    .addOption(outputOption())
    .option('--host <host>', 'only what belongs to this host (endpoints, peers, statuses, …)')
    .action(
      act((ctx, [kind, ids], opts) =>
        getResources(ctx, kind as string, (ids as string[] | undefined) ?? [], opts),
      ),
    );
};

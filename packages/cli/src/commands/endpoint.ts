import { isAbsolute, resolve } from 'node:path';
import { keys, type EndpointStatus } from '@calyx/model';
import { ResourceClient } from '@calyx/datastore';
import type { CliContext } from '../context.js';
import { renderValue } from '../documents.js';
import { EXIT, ResourceMissingError, UsageError } from '../exit-codes.js';
import { explainEndpoint } from '../explain.js';
import { renderExplanation } from '../format/explain.js';
import { findById } from '../kinds.js';
import { readView } from '../read.js';
import { formatOf, outputOption, reportInvalid, type Register } from './shared.js';

async function explain(
  ctx: CliContext,
  id: string,
  opts: Record<string, unknown>,
): Promise<number> {
  const format = formatOf(opts);
  const routeProtocol = Number(opts.routeProtocol ?? 80);
  if (!Number.isInteger(routeProtocol) || routeProtocol < 1 || routeProtocol > 255)
    throw new UsageError(`--route-protocol ${String(opts.routeProtocol)}: expected 1..255`);
  const config = await ctx.configFile();
  const dir = (opts.birdStateDir as string | undefined) ?? config?.birdStateDir;
  const store = await ctx.store();
  const client = new ResourceClient(store);
  const found = await findById(client, 'Endpoint', id);
  if (!found.length) throw new ResourceMissingError(`Endpoint ${id} not found`);
  if (found.length > 1)
    ctx.err(
      `warning: endpoint ${id} is stored ${found.length} times (${found.map((s) => s.key).join(', ')}); explaining the first`,
    );
  const endpoint = found[0]!.value;
  const { view, invalid } = await readView(store);
  reportInvalid(ctx, invalid);
  let status: EndpointStatus | null = null;
  if (endpoint.host !== null)
    status =
      (await client.get('EndpointStatus', keys.endpointStatus(endpoint.host, endpoint.id)))
        ?.value ?? null;
  const x = explainEndpoint(view, endpoint, status, {
    routeProtocol,
    endpointRevision: found[0]!.modRevision,
    ...(dir ? { birdStateDir: isAbsolute(dir) ? dir : resolve(ctx.cwd, dir) } : {}),
  });
  ctx.out(format === 'table' ? renderExplanation(x, routeProtocol) : renderValue(x, format));
  return EXIT.OK;
}

export const registerEndpoint: Register = (program, act) => {
  const endpoint = program.command('endpoint').description('Endpoints (ports)');
  endpoint
    .command('explain')
    .description(
      "What the endpoint's host computes for it: routes, iptables chains and ipsets, BGP peers and bird.conf",
    )
    .argument('<id>', 'the endpoint id')
    .option('--route-protocol <n>', "the agent's endpoint route protocol", '80')
    .option(
      '--bird-state-dir <dir>',
      "the agent's state directory (bird.conf then names the agent's log file)",
    )
    .addOption(outputOption())
    .action(act((ctx, [id], opts) => explain(ctx, id as string, opts)));
};

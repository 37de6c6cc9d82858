import { isAbsolute, resolve } from 'node:path';
import {
  HOST_PATTERN,
  ValidationError,
  prefixes,
  type Endpoint,
  type EndpointStatus,
  type HostStatus,
} from '@calyx/model';
import { decodeResource, kindOfKey, type Datastore, type Revision } from '@calyx/datastore';
import { computeBgp } from '@calyx/calc';
import { BirdController } from '@calyx/dataplane-bird';
import type { CliContext } from '../context.js';
import { renderValue } from '../documents.js';
import { EXIT, ResourceMissingError, UsageError } from '../exit-codes.js';
import {
  buildNodeStatus,
  renderNodeList,
  renderNodeStatus,
  type NodeStatusInput,
} from '../node-status.js';
import { listKind, readView, type InvalidRecord } from '../read.js';
import { formatOf, outputOption, reportInvalid, type Register } from './shared.js';

interface Records {
  hostStatus: Map<string, HostStatus>;
  endpointStatus: EndpointStatus[];
  endpoints: Endpoint[];
  invalid: InvalidRecord[];
}

/** Status records and bound endpoints (of one host, or all), at one revision. */
async function readRecords(
  store: Datastore,
  host: string | undefined,
  revision: Revision,
): Promise<Records> {
  const out: Records = { hostStatus: new Map(), endpointStatus: [], endpoints: [], invalid: [] };
  const read = async (prefix: string): Promise<void> => {
    for (const kv of (await store.list(prefix, { revision })).items) {
      const kind = kindOfKey(kv.key);
      try {
        if (kind === 'HostStatus') {
          const v = decodeResource('HostStatus', kv).value;
          out.hostStatus.set(v.host, v);
        } else if (kind === 'EndpointStatus')
          out.endpointStatus.push(decodeResource('EndpointStatus', kv).value);
        else if (kind === 'Endpoint') out.endpoints.push(decodeResource('Endpoint', kv).value);
      } catch (e) {
        if (!(e instanceof ValidationError)) throw e;
        out.invalid.push({ key: kv.key, error: e });
      }
    }
  };
  await read(host === undefined ? prefixes.status : prefixes.hostStatus(host));
  await read(host === undefined ? prefixes.boundEndpoints : prefixes.hostEndpoints(host));
  return out;
}

async function askBird(
  ctx: CliContext,
  stateDir: string,
  netns: string | undefined,
): Promise<NonNullable<NodeStatusInput['bird']>> {
  const bird = new BirdController({
    runner: ctx.runner(),
    stateDir: isAbsolute(stateDir) ? stateDir : resolve(ctx.cwd, stateDir),
    ...(netns ? { netns } : {}),
    logger: ctx.logger,
  });
  try {
    return { socket: bird.socket, protocols: await bird.protocols() };
  } catch (e) {
    return { socket: bird.socket, error: (e as Error).message };
  }
}

async function nodeStatus(
  ctx: CliContext,
  host: string | undefined,
  opts: Record<string, unknown>,
): Promise<number> {
  const format = formatOf(opts);
  const config = await ctx.configFile();
  const birdStateDir = (opts.birdStateDir as string | undefined) ?? config?.birdStateDir;
  const netns = (opts.netns as string | undefined) ?? config?.netns;
  if (host !== undefined && !HOST_PATTERN.test(host))
    throw new UsageError(`'${host}' is not a valid host name`);
  if (host === undefined && opts.birdStateDir !== undefined)
    throw new UsageError('--bird-state-dir asks one host’s BIRD: name the host');
  const store = await ctx.store();
  const hosts = await listKind(store, 'Host');
  const records = await readRecords(store, host, hosts.revision);
  const bad = reportInvalid(ctx, [...hosts.invalid, ...records.invalid]);
  const hostByName = new Map(hosts.items.map((h) => [h.value.name, h.value]));
  const now = ctx.now();
  const inputFor = (name: string): NodeStatusInput => ({
    host: name,
    hostResource: hostByName.get(name),
    hostStatus: records.hostStatus.get(name),
    endpoints: records.endpoints.filter((e) => e.host === name),
    endpointStatuses: records.endpointStatus.filter((e) => e.host === name),
    expectedPeers: [],
    now,
  });

  if (host === undefined) {
    const names = [...new Set([...hostByName.keys(), ...records.hostStatus.keys()])].sort();
    const list = names.map((n) => buildNodeStatus(inputFor(n)));
    if (format === 'table') {
      if (list.length) ctx.out(renderNodeList(list));
      else ctx.err('no hosts found');
    } else ctx.out(renderValue(list, format));
    return list.every((s) => s.healthy) && !bad ? EXIT.OK : EXIT.FAILURE;
  }

  const input = inputFor(host);
  if (!input.hostResource && !input.hostStatus && !input.endpoints.length)
    throw new ResourceMissingError(`host ${host}: no Host resource, agent record or endpoints`);
  if (birdStateDir !== undefined) {
    const { view, invalid } = await readView(store);
    reportInvalid(ctx, invalid);
    input.expectedPeers = computeBgp(view, host)?.peers ?? [];
    input.bird = await askBird(ctx, birdStateDir, netns);
  }
  const status = buildNodeStatus(input);
  ctx.out(format === 'table' ? renderNodeStatus(status) : renderValue(status, format));
  return status.healthy && !bad ? EXIT.OK : EXIT.FAILURE;
}

export const registerNode: Register = (program, act) => {
  const node = program.command('node').description('Hosts: agents, endpoints and BGP sessions');
  node
    .command('status')
    .description(
      'Agent liveness, endpoint statuses and (with --bird-state-dir) BGP sessions of a host, ' +
        'or a line per host; exit 1 when something is wrong',
    )
    .argument('[host]', 'the host; every host when omitted')
    .option(
      '--bird-state-dir <dir>',
      "the host's BIRD state directory (its control socket is <dir>/bird.ctl; the agent's --state-dir)",
    )
    .option('--netns <ns>', 'network namespace BIRD runs in')
    .addOption(outputOption())
    .action(act((ctx, [host], opts) => nodeStatus(ctx, host as string | undefined, opts)));
};

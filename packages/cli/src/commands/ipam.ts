import { isIP } from '@calyx/netaddr';
import { Ipam, checkIpam, repairIpam } from '@calyx/ipam';
import type { CliContext } from '../context.js';
import { renderValue } from '../documents.js';
import { EXIT, UsageError } from '../exit-codes.js';
import {
  addressHolder,
  ipamCheckSummary,
  renderAddressHolder,
  renderIpamCheck,
  renderIpamRepair,
  renderIpamSummary,
  summarizeIpam,
} from '../format/ipam.js';
import type { Progress } from '../progress.js';
import { listKind } from '../read.js';
import { formatOf, outputOption, reportInvalid, type Register } from './shared.js';

async function ipamShow(ctx: CliContext, opts: Record<string, unknown>): Promise<number> {
  const format = formatOf(opts);
  const ip = opts.ip as string | undefined;
  if (ip !== undefined && !isIP(ip)) throw new UsageError(`--ip ${ip}: not an IP address`);
  const store = await ctx.store();
  const blocks = await listKind(store, 'IpamBlock');
  const pools = await listKind(store, 'IpPool', { revision: blocks.revision });
  const invalid = reportInvalid(ctx, [...pools.invalid, ...blocks.invalid]);
  const blockValues = blocks.items.map((b) => b.value);
  if (ip !== undefined) {
    const h = addressHolder(ip, blockValues);
    ctx.out(format === 'table' ? renderAddressHolder(h) : renderValue(h, format));
  } else {
    const s = summarizeIpam(
      pools.items.map((p) => p.value),
      blockValues,
    );
    ctx.out(format === 'table' ? renderIpamSummary(s) : renderValue(s, format));
  }
  return invalid ? EXIT.FAILURE : EXIT.OK;
}

async function ipamCheck(ctx: CliContext, opts: Record<string, unknown>): Promise<number> {
  const format = formatOf(opts);
  const report = await checkIpam(new Ipam(await ctx.store(), { logger: ctx.logger }));
  ctx.out(format === 'table' ? renderIpamCheck(report) : renderValue(report, format));
  return report.ok ? EXIT.OK : EXIT.FAILURE;
}

/** The Ipam, with every release and assign (one per repaired address) ticking the bar. */
function counting(ipam: Ipam, progress: Progress): Ipam {
  const c = Object.create(ipam) as Ipam;
  c.release = async (items: Parameters<Ipam['release']>[0]) => {
    try {
      return await ipam.release(items);
    } finally {
      progress.tick();
    }
  };
  c.assign = async (req: Parameters<Ipam['assign']>[0]) => {
    try {
      return await ipam.assign(req);
    } finally {
      progress.tick();
    }
  };
  return c;
}

async function ipamRepair(ctx: CliContext, opts: Record<string, unknown>): Promise<number> {
  const format = formatOf(opts);
  const ipam = new Ipam(await ctx.store(), { logger: ctx.logger });
  const report = await checkIpam(ipam);
  if (report.ok || opts.dryRun === true) {
    if (format === 'table') {
      ctx.out(renderIpamCheck(report));
      if (!report.ok) ctx.out('dry run: nothing repaired\n');
    } else ctx.out(renderValue({ check: report, repair: null }, format));
    return report.ok ? EXIT.OK : EXIT.FAILURE;
  }
  const progress = ctx.progress('repairing IPAM', report.leaked.length + report.missing.length);
  let result;
  try {
    result = await repairIpam(counting(ipam, progress), report);
  } finally {
    progress.done();
  }
  const after = await checkIpam(ipam);
  if (format === 'table') {
    ctx.out(renderIpamRepair(result));
    ctx.out(`after repair: ${ipamCheckSummary(after)}\n`);
  } else ctx.out(renderValue({ check: report, repair: result, after }, format));
  return result.unrepairable.length === 0 && after.ok ? EXIT.OK : EXIT.FAILURE;
}

export const registerIpam: Register = (program, act) => {
  const ipam = program
    .command('ipam')
    .description('Inspect, check and repair IP address management');
  ipam
    .command('show')
    .description('Pools and blocks with their use; or who holds one address (--ip)')
    .option('--ip <address>', 'show who holds this address')
    .addOption(outputOption())
    .action(act((ctx, _args, opts) => ipamShow(ctx, opts)));
  ipam
    .command('check')
    .description(
      'Compare blocks, handles and ports: leaked and missing addresses, bad handle records (exit 1 when any)',
    )
    .addOption(outputOption())
    .action(act((ctx, _args, opts) => ipamCheck(ctx, opts)));
  ipam
    .command('repair')
    .description(
      'Release leaked addresses, assign missing ones, fix handle records (exit 1 if something is left)',
    )
    .option('--dry-run', 'only check')
    .addOption(outputOption())
    .action(act((ctx, _args, opts) => ipamRepair(ctx, opts)));
};

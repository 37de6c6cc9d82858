import { Option, type Command } from 'commander';
import { MAX_TXN_OPS, type ResourceClient } from '@calyx/datastore';
import type { CliContext } from '../context.js';
import {
  describeProblem,
  readDocuments,
  validateDocuments,
  type ResourceDocument,
} from '../documents.js';
import { EXIT, exitCodeOf } from '../exit-codes.js';
import {
  MAX_WRITES_PER_TXN,
  PartialWriteError,
  chunkUnits,
  commitUnits,
  lostRace,
  type Unit,
} from '../writer.js';
import { OUTPUT_FORMATS, type OutputFormat } from '../format/output.js';
import type { InvalidRecord } from '../read.js';

/** A command's body: gets the run's context, its positional arguments and its options. */
export type ActionFn = (
  ctx: CliContext,
  args: readonly unknown[],
  opts: Record<string, unknown>,
) => Promise<number>;

/** Turns an ActionFn into a commander action (the exit code is kept by `runCalyxctl`). */
export type Act = (fn: ActionFn) => (...commanderArgs: unknown[]) => Promise<void>;

export function outputOption(formats: readonly OutputFormat[] = OUTPUT_FORMATS): Option {
  return new Option('-o, --output <format>', 'output format').choices(formats).default('table');
}

export function formatOf(opts: Record<string, unknown>): OutputFormat {
  return (opts.output as OutputFormat | undefined) ?? 'table';
}

/** Registers a command module on the program. */
export type Register = (program: Command, act: Act) => void;

/** Tells stderr about stored values that failed validation; returns how many. */
export function reportInvalid(ctx: CliContext, invalid: readonly InvalidRecord[]): number {
  for (const i of invalid) ctx.err(`warning: ${i.key} holds an invalid value: ${i.error.message}`);
  return invalid.length;
}

/**
 * Reads `-f <file|->` and validates every document. On any problem, reports each one (with
 * its document number and line) and returns the usage exit code: nothing may be written.
 */
export async function readValidDocuments(
  ctx: CliContext,
  file: string,
  verb: string,
): Promise<ResourceDocument[] | number> {
  const text = await ctx.readInput(file);
  const read = readDocuments(text);
  const checked = validateDocuments(read.docs);
  const problems = [...read.problems, ...checked.problems];
  const name = file === '-' ? 'stdin' : file;
  if (problems.length) {
    for (const p of problems) ctx.err(`${name}: ${describeProblem(p)}`);
    ctx.err(
      `${problems.length} invalid document${problems.length === 1 ? '' : 's'}: nothing was ${verb}`,
    );
    return EXIT.USAGE;
  }
  if (!checked.valid.length) {
    ctx.err(`${name}: no documents`);
    return EXIT.USAGE;
  }
  return checked.valid;
}

/**
 * Writes the units (every one in a single transaction when they fit) and reports each unit's
 * outcome on stdout. When the writes need several transactions it says so on stderr; when one
 * of them fails after others were committed, it lists what was and was not written.
 */
export async function writeUnits(
  ctx: CliContext,
  client: ResourceClient,
  units: readonly Unit[],
  replan: (units: Unit[]) => Promise<Unit[]>,
  opts: { dryRun?: boolean; progressLabel: string },
): Promise<number> {
  if (opts.dryRun) {
    for (const u of units) ctx.out(`${u.label} ${u.outcome} (dry run)\n`);
    return EXIT.OK;
  }
  const chunks = chunkUnits(units).length;
  const writes = units.reduce((n, u) => n + u.writes.length, 0);
  if (chunks > 1)
    ctx.err(
      `${units.length} documents make ${writes} writes; a transaction holds at most ` +
        `${MAX_WRITES_PER_TXN} (${MAX_TXN_OPS} datastore operations): writing in ${chunks} ` +
        `transactions, each document's records together in one`,
    );
  const progress = ctx.progress(opts.progressLabel, units.length);
  try {
    const r = await commitUnits(client, units, replan, { progress });
    progress.done();
    for (const u of r.done) ctx.out(`${u.label} ${u.outcome}\n`);
    return EXIT.OK;
  } catch (e) {
    progress.done();
    if (!(e instanceof PartialWriteError)) throw e;
    // Losing compare-and-set races, even as a vanished or appeared key, is a conflict.
    const code = lostRace(e.error) ? EXIT.CONFLICT : exitCodeOf(e.error);
    if (!e.done.length) {
      ctx.err(`calyxctl: ${(e.error as Error).message}: nothing was written`);
      return code;
    }
    for (const u of e.done) ctx.out(`${u.label} ${u.outcome}\n`);
    ctx.err(e.message);
    ctx.err(
      `written: ${e.done.length} document(s) in ${e.chunk - 1} transaction(s); ` +
        `not written: ${e.notDone.map((u) => u.label).join(', ')}`,
    );
    return code;
  }
}

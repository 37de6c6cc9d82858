import { parseArgs, type ParseArgsConfig } from 'node:util';
import type { z } from 'zod';
import type { Logger } from '@calyx/core';
import { loadConfig } from './load.js';
import { runService, type Service, type SignalSource } from './service.js';

export type FlagValues = Record<string, string | boolean | (string | boolean)[] | undefined>;

/** A string flag's value (undefined when not given). */
export const flagString = (v: FlagValues[string]): string | undefined =>
  typeof v === 'string' ? v : undefined;
/** A numeric flag's value; the schema rejects what is not a number, naming the flag. */
export const flagNumber = (v: FlagValues[string]): number | undefined =>
  typeof v === 'string' ? Number(v) : undefined;

/** What a long-running Calyx program is: its flags, its settings, and how it starts. */
export interface ProgramSpec<S extends z.ZodType> {
  /** `calyx-agent`: names the configuration in errors. */
  name: string;
  usage: string;
  /** Flags besides `--config` and `--help`, which every program has. */
  options: NonNullable<ParseArgsConfig['options']>;
  schema: S;
  /** `CALYX_AGENT_`. */
  envPrefix: string;
  /** Defaults known only at run time (the machine's host name). */
  defaults?: Record<string, unknown>;
  /** The settings the flags give (undefined: not given). */
  overrides(flags: FlagValues): Record<string, unknown>;
  logger(settings: z.output<S>): Logger;
  /** What the start-up log line says about the settings (no secrets). */
  describe?(settings: z.output<S>): Record<string, unknown>;
  /** Opens what the program needs (its datastore) and returns the service to run. */
  open(settings: z.output<S>, logger: Logger): Promise<Service>;
}

export interface ProgramIo {
  argv: string[];
  env: Readonly<Record<string, string | undefined>>;
  out(text: string): void;
  err(text: string): void;
  signals?: SignalSource;
}

/**
 * A program's life: flags, then settings (defaults < file < environment < flags), then the
 * service until a stop signal. Returns the exit code (the caller exits): 0 help or stopped,
 * 1 could not start, 2 bad flags or settings (before anything is touched).
 */
export async function runProgram<S extends z.ZodType>(
  spec: ProgramSpec<S>,
  io: ProgramIo = {
    argv: process.argv.slice(2),
    env: process.env,
    out: (t) => console.log(t),
    err: (t) => console.error(t),
  },
): Promise<number> {
  let flags: FlagValues;
  try {
    flags = parseArgs({
      args: io.argv,
      options: {
        ...spec.options,
        config: { type: 'string' },
        help: { type: 'boolean', default: false },
      },
    }).values;
  } catch (e) {
    io.err(`${(e as Error).message}\n${spec.usage}`);
    return 2;
  }
  if (flags.help) {
    io.out(spec.usage);
    return 0;
  }
  let settings: z.output<S>;
  try {
    settings = await loadConfig(spec.schema, {
      ...(typeof flags.config === 'string' ? { file: flags.config } : {}),
      env: io.env,
      envPrefix: spec.envPrefix,
      what: `${spec.name} configuration`,
      ...(spec.defaults ? { defaults: spec.defaults } : {}),
      overrides: spec.overrides(flags),
    });
  } catch (e) {
    io.err(`${(e as Error).message}\n${spec.usage}`);
    return 2;
  }
  const logger = spec.logger(settings);
  logger.info({ program: spec.name, ...spec.describe?.(settings) }, 'starting');
  let service: Service;
  try {
    service = await spec.open(settings, logger);
  } catch (e) {
    logger.error({ err: (e as Error).message }, 'could not start');
    return 1;
  }
  return runService(service, { logger, ...(io.signals ? { signals: io.signals } : {}) });
}

/** The service of a program that runs one thing over resources it opened (its datastore). */
export function serviceOf(
  main: { start(): Promise<void>; close(): Promise<void> },
  ...resources: { close(): Promise<void> }[]
): Service {
  return {
    start: () => main.start(),
    stop: async () => {
      try {
        await main.close();
      } finally {
        for (const r of resources) await r.close();
      }
    },
  };
}

import { Command, CommanderError } from 'commander';
import { registerApply } from './commands/apply.js';
import { registerDelete } from './commands/delete.js';
import { registerEndpoint } from './commands/endpoint.js';
import { registerGet } from './commands/get.js';
import { registerIpam } from './commands/ipam.js';
import { registerNode } from './commands/node.js';
import type { Act, Register } from './commands/shared.js';
import { CliContext, type CalyxctlIo, type GlobalOptions } from './context.js';
import { EXIT, exitCodeOf } from './exit-codes.js';

export const VERSION = '0.1.0';

const COMMANDS: readonly Register[] = [
  registerGet,
  registerApply,
  registerDelete,
  registerIpam,
  registerNode,
  registerEndpoint,
];

const EXIT_HELP = `
Datastore: --datastore <url>, else the --config file's 'datastore:', else $CALYX_DATASTORE.
  URLs: memory://name, etcd://host:port[,host:port…][/namespace], etcds://…?ca=&cert=&key=

Exit codes:
  0  done (checks: nothing wrong)
  1  failed, or a check found problems (ipam check/repair, node status)
  2  usage, config or validation error: nothing was written
  3  not found
  4  datastore unavailable
  5  conflict: the datastore changed while writing (retry)
`;

/** The whole command tree; `act` wraps each command body. */
export function buildProgram(io: CalyxctlIo, act: Act): Command {
  const program = new Command('calyxctl')
    .description('Manage Calyx resources, IPAM and hosts through the datastore')
    .version(VERSION)
    .option('--datastore <url>', 'datastore URL (memory://name, etcd://host:port[/namespace])')
    .option('--config <file>', "JSON or YAML file with 'datastore:' (and birdStateDir, netns)")
    .option('--debug', 'debug logs (pino, JSON) on stderr')
    .exitOverride()
    .showSuggestionAfterError()
    .addHelpText('after', EXIT_HELP)
    .configureOutput({
      writeOut: (s) => void io.stdout.write(s),
      writeErr: (s) => void io.stderr.write(s),
    });
  for (const register of COMMANDS) register(program, act);
  return program;
}

/**
 * Runs `calyxctl` in-process: parses `argv` (the arguments after the program name), runs the
 * command against `io`, and returns the exit code (see EXIT). It never exits the process and
 * closes whatever it opened.
 */
export async function runCalyxctl(argv: readonly string[], io: CalyxctlIo): Promise<number> {
  let code: number = EXIT.OK;
  let ctx: CliContext | undefined;
  const act: Act =
    (fn) =>
    async (...args) => {
      const command = args[args.length - 1] as Command;
      const opts = args[args.length - 2] as Record<string, unknown>;
      ctx = new CliContext(io, command.optsWithGlobals<GlobalOptions>());
      code = await fn(ctx, args.slice(0, -2), opts);
    };
  try {
    await buildProgram(io, act).parseAsync([...argv], { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError) {
      // Help and --version exit 0; every other parse error is a usage error.
      code = e.exitCode === 0 ? EXIT.OK : EXIT.USAGE;
    } else {
      code = exitCodeOf(e);
      io.stderr.write(`calyxctl: ${e instanceof Error ? e.message : String(e)}\n`);
      ctx?.logger.debug({ err: e }, 'command failed');
    }
  } finally {
    try {
      await ctx?.close();
    } catch (e) {
      io.stderr.write(`calyxctl: closing the datastore: ${(e as Error).message}\n`);
    }
  }
  return code;
}

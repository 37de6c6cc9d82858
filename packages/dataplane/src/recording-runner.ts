import { CommandError } from './errors.js';
import { assertArgv } from './names.js';
import {
  inNetns,
  type CommandResult,
  type CommandRunner,
  type RunOptions,
  type RunningCommand,
  type SpawnOptions,
} from './runner.js';

export interface RecordedCall {
  argv: string[];
  netns: string | undefined;
  input: string | undefined;
}

type Responder = (
  call: RecordedCall,
) => Partial<Pick<CommandResult, 'stdout' | 'stderr' | 'exitCode'>> | undefined;

/**
 * A CommandRunner for unit tests: records every call (argv as executed, namespace, stdin) and
 * answers from scripted responders; unscripted commands succeed with empty output.
 */
export class RecordingRunner implements CommandRunner {
  readonly calls: RecordedCall[] = [];
  private readonly responders: { match: (c: RecordedCall) => boolean; respond: Responder }[] = [];

  /** Answers calls whose argv starts with `prefix` (as given, before netns wrapping). */
  on(
    prefix: readonly string[],
    respond: Responder | Partial<Pick<CommandResult, 'stdout' | 'stderr' | 'exitCode'>>,
  ): this {
    const fn: Responder = typeof respond === 'function' ? respond : () => respond;
    this.responders.unshift({ match: (c) => prefix.every((p, i) => c.argv[i] === p), respond: fn });
    return this;
  }

  async run(argv: readonly string[], opts: RunOptions = {}): Promise<CommandResult> {
    assertArgv(argv);
    inNetns(argv, opts.netns); // validates the namespace name like the real runner
    const input = opts.input === undefined ? undefined : opts.input.toString();
    const call: RecordedCall = { argv: [...argv], netns: opts.netns, input };
    this.calls.push(call);
    let r: Partial<Pick<CommandResult, 'stdout' | 'stderr' | 'exitCode'>> = {};
    for (const h of this.responders) {
      if (h.match(call)) {
        r = h.respond(call) ?? {};
        break;
      }
    }
    const exitCode = r.exitCode ?? 0;
    const result = {
      argv: [...argv],
      exitCode,
      stdout: r.stdout ?? '',
      stderr: r.stderr ?? '',
      durationMs: 0,
    };
    if (!(opts.okExitCodes ?? [0]).includes(exitCode))
      throw new CommandError(argv, exitCode, result.stderr, result.stdout);
    return result;
  }

  spawn(argv: readonly string[], opts: SpawnOptions = {}): RunningCommand {
    assertArgv(argv);
    this.calls.push({ argv: [...argv], netns: opts.netns, input: undefined });
    return {
      pid: -1,
      lines: (async function* () {})(),
      exited: Promise.resolve({ exitCode: 0, signal: null, stderr: '' }),
      kill: () => undefined,
      write: () => undefined,
    };
  }

  /** Calls whose argv starts with `prefix`. */
  callsOf(...prefix: string[]): RecordedCall[] {
    return this.calls.filter((c) => prefix.every((p, i) => c.argv[i] === p));
  }

  clear(): void {
    this.calls.length = 0;
  }
}

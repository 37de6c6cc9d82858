import { CalyxError } from '@calyx/core';

/** A command exited unsuccessfully; carries what it printed. */
export class CommandError extends CalyxError {
  constructor(
    readonly argv: readonly string[],
    readonly exitCode: number | null,
    readonly stderr: string,
    readonly stdout: string,
    readonly signal: NodeJS.Signals | null = null,
  ) {
    const why = signal ? `killed by ${signal}` : `exit ${exitCode}`;
    const err = stderr.trim().split('\n').slice(-3).join(' | ');
    super('COMMAND_FAILED', `${argv.join(' ')}: ${why}${err ? `: ${err}` : ''}`);
  }
}

export class CommandNotFoundError extends CalyxError {
  constructor(readonly command: string) {
    super(
      'COMMAND_NOT_FOUND',
      `command not found: ${command} (install the Debian package that provides it)`,
    );
  }
}

export class CommandTimeoutError extends CalyxError {
  constructor(
    readonly argv: readonly string[],
    readonly timeoutMs: number,
  ) {
    super('COMMAND_TIMEOUT', `${argv.join(' ')}: no exit after ${timeoutMs} ms (killed)`);
  }
}

/** A name that would reach a command (interface, chain, set, file, namespace) is not acceptable. */
export class InvalidNameError extends CalyxError {
  constructor(
    readonly kind: string,
    readonly value: string,
    readonly rule: string,
  ) {
    super('INVALID_NAME', `invalid ${kind} ${JSON.stringify(value)}: ${rule}`);
  }
}

/** Base of every typed Calyx error: `code` is stable and meant for programs, `message` for people. */
export class CalyxError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** An operation was cancelled through its AbortSignal or because its owner closed. */
export class AbortedError extends CalyxError {
  constructor(message = 'operation aborted', options?: { cause?: unknown }) {
    super('ABORTED', message, options);
  }
}

export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new AbortedError('operation aborted', { cause: signal.reason });
}

export function isCalyxError(e: unknown, code?: string): e is CalyxError {
  return e instanceof CalyxError && (code === undefined || e.code === code);
}

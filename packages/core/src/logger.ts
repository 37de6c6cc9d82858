/**
 * The logging surface libraries use. A pino logger satisfies it; libraries never create one
 * (applications do) and default to `silentLogger`.
 */
export interface Logger {
  debug(obj: object | string, msg?: string): void;
  info(obj: object | string, msg?: string): void;
  warn(obj: object | string, msg?: string): void;
  error(obj: object | string, msg?: string): void;
  child(bindings: Record<string, unknown>): Logger;
}

const noop = (): void => undefined;

export const silentLogger: Logger = {
  debug: noop,
  info: noop,
  warn: noop,
  error: noop,
  child: () => silentLogger,
};

export interface LogRecord {
  level: 'debug' | 'info' | 'warn' | 'error';
  msg: string | undefined;
  fields: Record<string, unknown>;
}

/** Keeps every record in memory; for tests that assert on what was logged. */
export class MemoryLogger implements Logger {
  constructor(
    readonly records: LogRecord[] = [],
    private readonly bindings: Record<string, unknown> = {},
  ) {}

  private add(level: LogRecord['level'], obj: object | string, msg?: string): void {
    if (typeof obj === 'string')
      this.records.push({ level, msg: obj, fields: { ...this.bindings } });
    else this.records.push({ level, msg, fields: { ...this.bindings, ...obj } });
  }

  debug(obj: object | string, msg?: string): void {
    this.add('debug', obj, msg);
  }
  info(obj: object | string, msg?: string): void {
    this.add('info', obj, msg);
  }
  warn(obj: object | string, msg?: string): void {
    this.add('warn', obj, msg);
  }
  error(obj: object | string, msg?: string): void {
    this.add('error', obj, msg);
  }
  child(bindings: Record<string, unknown>): Logger {
    return new MemoryLogger(this.records, { ...this.bindings, ...bindings });
  }
}

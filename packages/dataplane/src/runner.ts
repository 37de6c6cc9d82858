import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { PassThrough } from 'node:stream';
import { delimiter } from 'node:path';
import { silentLogger, type Logger } from '@calyx/core';
import { CommandError, CommandNotFoundError, CommandTimeoutError } from './errors.js';
import { assertArgv, assertNetnsName } from './names.js';

export interface RunOptions {
  /** Run inside this network namespace (`ip -n NS …` for ip itself, `ip netns exec NS …` otherwise). */
  netns?: string;
  /** Written to stdin, which is then closed. */
  input?: string | Buffer;
  /** Kill and fail with CommandTimeoutError after this long. */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Exit codes that are not failures (default [0]). */
  okExitCodes?: readonly number[];
  env?: Readonly<Record<string, string>>;
}

export interface CommandResult {
  argv: readonly string[];
  exitCode: number;
  stdout: string;
  stderr: string;
  durationMs: number;
}

export interface SpawnOptions {
  netns?: string;
  signal?: AbortSignal;
  env?: Readonly<Record<string, string>>;
  /** Keep stdin open for `write()`. */
  stdin?: boolean;
  /** Interleave stderr into `lines` too (for daemons that log there). */
  stderrToLines?: boolean;
}

/** A long-running child (ip monitor, ping, a daemon in the foreground). */
export interface RunningCommand {
  readonly pid: number;
  /** stdout, line by line; ends when the process exits. */
  readonly lines: AsyncIterable<string>;
  /** Resolves when the process has exited (never rejects). */
  readonly exited: Promise<{
    exitCode: number | null;
    signal: NodeJS.Signals | null;
    stderr: string;
  }>;
  kill(signal?: NodeJS.Signals): void;
  /** Writes to stdin (spawned with `stdin: true`). */
  write(data: string): void;
}

/**
 * Runs external commands as argv arrays — never through a shell. Everything that touches the
 * kernel or a daemon goes through one of these, so unit tests swap in a RecordingRunner.
 */
export interface CommandRunner {
  run(argv: readonly string[], opts?: RunOptions): Promise<CommandResult>;
  spawn(argv: readonly string[], opts?: SpawnOptions): RunningCommand;
}

/** The argv actually executed for `argv` inside `netns`. */
export function inNetns(argv: readonly string[], netns: string | undefined): string[] {
  if (netns === undefined) return [...argv];
  assertNetnsName(netns);
  if (argv[0] === 'ip') return ['ip', '-n', netns, ...argv.slice(1)];
  return ['ip', 'netns', 'exec', netns, ...argv];
}

const SBIN = ['/usr/local/sbin', '/usr/sbin', '/sbin'];

function withSbin(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const parts = (env.PATH ?? '/usr/local/bin:/usr/bin:/bin').split(delimiter);
  for (const p of SBIN) if (!parts.includes(p)) parts.push(p);
  return { ...env, PATH: parts.join(delimiter) };
}

export interface ExecCommandRunnerOptions {
  logger?: Logger;
  /** Default timeout for `run` (ms). */
  defaultTimeoutMs?: number;
}

/** The real runner: child_process.spawn with `shell: false`. */
export class ExecCommandRunner implements CommandRunner {
  private readonly logger: Logger;
  private readonly defaultTimeoutMs: number;

  constructor(opts: ExecCommandRunnerOptions = {}) {
    this.logger = opts.logger ?? silentLogger;
    this.defaultTimeoutMs = opts.defaultTimeoutMs ?? 120_000;
  }

  run(argv: readonly string[], opts: RunOptions = {}): Promise<CommandResult> {
    assertArgv(argv);
    const full = inNetns(argv, opts.netns);
    const started = performance.now();
    return new Promise((resolve, reject) => {
      const child = spawn(full[0]!, full.slice(1), {
        shell: false,
        stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
        env: withSbin({ ...process.env, ...(opts.env ?? {}) }),
      });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      let timedOut = false;
      let settled = false;
      const timeoutMs = opts.timeoutMs ?? this.defaultTimeoutMs;
      const timer = setTimeout(() => {
        timedOut = true;
        child.kill('SIGKILL');
      }, timeoutMs);
      const onAbort = (): void => {
        child.kill('SIGKILL');
      };
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      child.stdout!.on('data', (b: Buffer) => out.push(b));
      child.stderr!.on('data', (b: Buffer) => err.push(b));
      if (opts.input !== undefined) {
        child.stdin!.on('error', () => undefined); // EPIPE if the command exits early
        child.stdin!.end(opts.input);
      }
      const finish = (fn: () => void): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        opts.signal?.removeEventListener('abort', onAbort);
        fn();
      };
      child.on('error', (e: NodeJS.ErrnoException) => {
        finish(() => reject(e.code === 'ENOENT' ? new CommandNotFoundError(full[0]!) : e));
      });
      child.on('close', (code, signal) => {
        finish(() => {
          const stdout = Buffer.concat(out).toString('utf8');
          const stderr = Buffer.concat(err).toString('utf8');
          const durationMs = performance.now() - started;
          this.logger.debug(
            { argv: full, exitCode: code, durationMs: Math.round(durationMs) },
            'command',
          );
          if (timedOut) return reject(new CommandTimeoutError(full, timeoutMs));
          if (opts.signal?.aborted)
            return reject(new CommandError(full, code, stderr, stdout, signal ?? 'SIGKILL'));
          const ok = opts.okExitCodes ?? [0];
          if (code === null || !ok.includes(code))
            return reject(new CommandError(full, code, stderr, stdout, signal));
          resolve({ argv: full, exitCode: code, stdout, stderr, durationMs });
        });
      });
    });
  }

  spawn(argv: readonly string[], opts: SpawnOptions = {}): RunningCommand {
    assertArgv(argv);
    const full = inNetns(argv, opts.netns);
    const child = spawn(full[0]!, full.slice(1), {
      shell: false,
      stdio: [opts.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'],
      env: withSbin({ ...process.env, ...(opts.env ?? {}) }),
    });
    child.stdin?.on('error', () => undefined);
    const err: Buffer[] = [];
    child.stderr!.on('data', (b: Buffer) => {
      if (err.length < 64) err.push(b);
    });
    const exited = new Promise<{
      exitCode: number | null;
      signal: NodeJS.Signals | null;
      stderr: string;
    }>((resolve) => {
      child.on('error', (e) => resolve({ exitCode: null, signal: null, stderr: e.message }));
      child.on('exit', (code, signal) =>
        resolve({ exitCode: code, signal, stderr: Buffer.concat(err).toString('utf8') }),
      );
    });
    const onAbort = (): void => {
      child.kill('SIGTERM');
    };
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    void exited.then(() => opts.signal?.removeEventListener('abort', onAbort));
    let input: NodeJS.ReadableStream = child.stdout!;
    if (opts.stderrToLines) {
      const both = new PassThrough();
      let open = 2;
      const end = (): void => {
        if (--open === 0) both.end();
      };
      child.stdout!.on('end', end).pipe(both, { end: false });
      child.stderr!.on('end', end).pipe(both, { end: false });
      input = both;
    }
    const rl = createInterface({ input, crlfDelay: Infinity });
    return {
      pid: child.pid ?? -1,
      lines: rl,
      exited,
      kill: (signal: NodeJS.Signals = 'SIGTERM') => {
        if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      },
      write: (data: string) => {
        if (!child.stdin) throw new Error('spawned without stdin: true');
        child.stdin.write(data);
      },
    };
  }
}

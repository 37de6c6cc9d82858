import { readFile } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import pino from 'pino';
import { silentLogger, type Logger } from '@calyx/core';
import {
  ResourceClient,
  UnavailableError,
  createDatastore,
  type Datastore,
  type DatastoreBackend,
} from '@calyx/datastore';
import { MemoryBackend } from '@calyx/datastore-memory';
import { EtcdBackend } from '@calyx/datastore-etcd';
import { RedisBackend } from '@calyx/datastore-redis';
import { ExecCommandRunner, type CommandRunner } from '@calyx/dataplane';
import { chooseDatastore, loadConfig, type CalyxctlConfig } from './config.js';
import { UsageError } from './exit-codes.js';
import { Progress, type OutputStream } from './progress.js';

/** Everything `runCalyxctl` talks to; tests pass strings, buffers and an in-memory datastore. */
export interface CalyxctlIo {
  stdout: OutputStream;
  stderr: OutputStream;
  env: Readonly<Record<string, string | undefined>>;
  /** What `-f -` reads. */
  stdin?: string | AsyncIterable<string | Uint8Array>;
  /** Use this datastore (never closed by calyxctl) instead of opening one by URL. */
  datastore?: Datastore;
  /** Backends for `--datastore` URLs. Default: memory:// and etcd://, etcds://. */
  backends?: readonly DatastoreBackend[];
  /** Runs `birdc` (node status). Default: the real runner. */
  runner?: CommandRunner;
  /** Relative file names are resolved from here. Default: process.cwd(). */
  cwd?: string;
  /** The current time (ages in node status). */
  now?: () => Date;
}

/** Options every command accepts. */
export interface GlobalOptions {
  datastore?: string;
  config?: string;
  debug?: boolean;
}

/** One run's shared state: output, the datastore (opened once, on first use), the config. */
export class CliContext {
  readonly logger: Logger;
  private opened: Datastore | undefined;
  private config: CalyxctlConfig | undefined | null = null;
  private execRunner: CommandRunner | undefined;

  constructor(
    readonly io: CalyxctlIo,
    readonly globals: GlobalOptions,
  ) {
    this.logger = globals.debug
      ? (pino(
          { level: 'debug', base: { program: 'calyxctl' } },
          { write: (s: string) => void io.stderr.write(s) },
        ) as unknown as Logger)
      : silentLogger;
  }

  out(text: string): void {
    this.io.stdout.write(text);
  }

  err(text: string): void {
    this.io.stderr.write(text.endsWith('\n') ? text : `${text}\n`);
  }

  now(): Date {
    return this.io.now ? this.io.now() : new Date();
  }

  get cwd(): string {
    return this.io.cwd ?? process.cwd();
  }

  /** The `--config` file, read once (undefined without one). */
  async configFile(): Promise<CalyxctlConfig | undefined> {
    if (this.config === null)
      this.config = this.globals.config
        ? await loadConfig(this.globals.config, this.cwd)
        : undefined;
    return this.config;
  }

  async store(): Promise<Datastore> {
    if (this.io.datastore) return this.io.datastore;
    if (this.opened) return this.opened;
    const choice = chooseDatastore(
      this.globals.datastore,
      await this.configFile(),
      this.globals.config,
      this.io.env,
    );
    this.logger.debug({ url: choice.url, from: choice.from }, 'opening the datastore');
    try {
      this.opened = await createDatastore(choice.url, {
        backends: this.io.backends ?? [new MemoryBackend(), new EtcdBackend(), new RedisBackend()],
        logger: this.logger,
      });
    } catch (e) {
      if (e instanceof UnavailableError)
        throw new UnavailableError(`datastore ${choice.url} (${choice.from}): ${e.message}`, {
          cause: e,
        });
      throw e;
    }
    return this.opened;
  }

  async client(): Promise<ResourceClient> {
    return new ResourceClient(await this.store());
  }

  runner(): CommandRunner {
    if (this.io.runner) return this.io.runner;
    this.execRunner ??= new ExecCommandRunner({ logger: this.logger });
    return this.execRunner;
  }

  progress(label: string, total: number): Progress {
    return new Progress(this.io.stderr, label, total);
  }

  /** A file's text, or stdin's for `-`. */
  async readInput(file: string): Promise<string> {
    if (file === '-') {
      const input = this.io.stdin;
      if (input === undefined) throw new UsageError('-f -: no standard input');
      if (typeof input === 'string') return input;
      const chunks: Buffer[] = [];
      for await (const c of input)
        chunks.push(typeof c === 'string' ? Buffer.from(c) : Buffer.from(c));
      return Buffer.concat(chunks).toString('utf8');
    }
    try {
      return await readFile(isAbsolute(file) ? file : resolve(this.cwd, file), 'utf8');
    } catch (e) {
      throw new UsageError(`${file}: ${(e as NodeJS.ErrnoException).message}`);
    }
  }

  /** Closes what this run opened (an injected datastore stays open). */
  async close(): Promise<void> {
    const s = this.opened;
    this.opened = undefined;
    if (s) await s.close();
  }
}

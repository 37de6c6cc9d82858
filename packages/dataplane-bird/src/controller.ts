import { readFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { silentLogger, sleep, type Logger } from '@calyx/core';
import {
  CommandError,
  assertAbsolutePath,
  writeFileAtomic,
  type CommandRunner,
  type Programmer,
  type ReconcileReport,
} from '@calyx/dataplane';
import { BirdConfigError, BirdControlError } from './errors.js';
import type { BirdConfig } from './model.js';
import { renderBirdConfig } from './render.js';
import { parseRouteCount, parseShowProtocols, type BirdProtocolStatus } from './status.js';

export interface BirdControllerOptions {
  runner: CommandRunner;
  /** Directory for bird.conf, the control socket, the pid file and the log. Keep it short: socket paths are limited to 107 bytes. */
  stateDir: string;
  netns?: string;
  logger?: Logger;
  birdBinary?: string;
  birdcBinary?: string;
}

/**
 * Runs one BIRD: renders the model, validates it with `bird -p -c`, writes it atomically,
 * then starts BIRD if it is not running or asks it to reload (`birdc configure`). BIRD keeps
 * running when the controller (or the agent) stops: routes survive agent restarts.
 */
export class BirdController implements Programmer<BirdConfig> {
  readonly configFile: string;
  readonly socket: string;
  readonly pidFile: string;
  readonly logFile: string;
  private readonly runner: CommandRunner;
  private readonly netns: string | undefined;
  private readonly logger: Logger;
  private readonly bird: string;
  private readonly birdc: string;
  private lastApplied: string | undefined;

  constructor(opts: BirdControllerOptions) {
    assertAbsolutePath(opts.stateDir);
    this.runner = opts.runner;
    this.netns = opts.netns;
    this.logger = (opts.logger ?? silentLogger).child({ programmer: 'bird' });
    this.configFile = join(opts.stateDir, 'bird.conf');
    this.socket = join(opts.stateDir, 'bird.ctl');
    this.pidFile = join(opts.stateDir, 'bird.pid');
    this.logFile = join(opts.stateDir, 'bird.log');
    this.bird = opts.birdBinary ?? 'bird';
    this.birdc = opts.birdcBinary ?? 'birdc';
    if (Buffer.byteLength(this.socket) > 107)
      throw new BirdControlError(`control socket path too long: ${this.socket}`);
  }

  private run(argv: string[], okExitCodes?: number[]) {
    return this.runner.run(argv, {
      ...(this.netns ? { netns: this.netns } : {}),
      ...(okExitCodes ? { okExitCodes } : {}),
      timeoutMs: 30_000,
    });
  }

  /** birdc output; throws BirdControlError when BIRD does not answer. */
  async birdcCommand(...args: string[]): Promise<string> {
    try {
      return (await this.run([this.birdc, '-s', this.socket, ...args])).stdout;
    } catch (e) {
      if (e instanceof CommandError)
        throw new BirdControlError(
          `birdc ${args.join(' ')}: ${e.stderr.trim() || e.stdout.trim()}`,
          { cause: e },
        );
      throw e;
    }
  }

  async isRunning(): Promise<boolean> {
    const r = await this.run([this.birdc, '-s', this.socket, 'show', 'status'], [0, 1]);
    return r.exitCode === 0 && r.stdout.includes('Daemon is up and running');
  }

  /** The PID from BIRD's pid file, if it is running. */
  async pid(): Promise<number | undefined> {
    try {
      const pid = Number((await readFile(this.pidFile, 'utf8')).trim());
      if (!Number.isInteger(pid) || pid <= 0) return undefined;
      process.kill(pid, 0);
      return pid;
    } catch {
      return undefined;
    }
  }

  /** Validates a config text with `bird -p` without touching the running BIRD. */
  async validate(text: string): Promise<void> {
    const candidate = `${this.configFile}.candidate`;
    await writeFileAtomic(candidate, text);
    const r = await this.run([this.bird, '-p', '-c', candidate], [0, 1]);
    if (r.exitCode !== 0)
      throw new BirdConfigError(
        `BIRD rejected the generated config: ${(r.stderr || r.stdout).trim()}`,
        r.stderr || r.stdout,
      );
  }

  async apply(config: BirdConfig): Promise<ReconcileReport> {
    const t0 = performance.now();
    await mkdir(join(this.configFile, '..'), { recursive: true });
    const text = renderBirdConfig({ ...config, logFile: config.logFile ?? this.logFile });
    const running = await this.isRunning();
    if (
      running &&
      text ===
        (this.lastApplied ?? (await readFile(this.configFile, 'utf8').catch(() => undefined)))
    ) {
      this.lastApplied = text;
      return { changes: 0, durationMs: performance.now() - t0 };
    }
    await this.validate(text);
    await writeFileAtomic(this.configFile, text);
    if (running) {
      const out = await this.birdcCommand('configure');
      if (!/Reconfigured|Reconfiguration in progress/.test(out))
        throw new BirdConfigError(`birdc configure: ${out.trim()}`, out);
      this.logger.info({ configFile: this.configFile }, 'BIRD reconfigured');
    } else {
      await this.start();
    }
    this.lastApplied = text;
    return {
      changes: 1,
      durationMs: performance.now() - t0,
      details: { started: running ? 0 : 1 },
    };
  }

  private async start(): Promise<void> {
    // BIRD daemonizes: it outlives this process, as it must outlive an agent restart.
    await this.run([this.bird, '-c', this.configFile, '-s', this.socket, '-P', this.pidFile]);
    const deadline = Date.now() + 10_000;
    while (!(await this.isRunning())) {
      if (Date.now() > deadline)
        throw new BirdControlError(`BIRD did not answer on ${this.socket} after starting`);
      await sleep(20);
    }
    this.logger.info({ pid: await this.pid(), socket: this.socket }, 'BIRD started');
  }

  invalidate(): void {
    this.lastApplied = undefined;
  }

  async protocols(): Promise<BirdProtocolStatus[]> {
    return parseShowProtocols(await this.birdcCommand('show', 'protocols'));
  }

  async routeCounts(): Promise<Map<string, number>> {
    return parseRouteCount(await this.birdcCommand('show', 'route', 'count'));
  }

  /** Stops BIRD by the PID in its pid file (SIGTERM, then SIGKILL after 5 s). */
  async stop(): Promise<void> {
    const pid = await this.pid();
    if (pid === undefined) return;
    process.kill(pid, 'SIGTERM');
    const deadline = Date.now() + 5000;
    for (;;) {
      try {
        process.kill(pid, 0);
      } catch {
        return;
      }
      if (Date.now() > deadline) {
        process.kill(pid, 'SIGKILL');
        return;
      }
      await sleep(20);
    }
  }
}

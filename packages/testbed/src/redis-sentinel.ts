// A Redis Sentinel deployment for failover tests: one primary, replicas and sentinels, all
// Debian's `redis-server` (sentinels are `redis-server <conf> --sentinel`), on free loopback
// ports with data and sentinel config files in one temporary dir. Servers are spoken to with
// a minimal RESP client over node:net, so this package needs no Redis client library.
import { spawn, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sleep } from '@calyx/core';
import { freePort } from './ports.js';
import { stopPids } from './testbed.js';

// ---------------------------------------------------------------------------------------
// Minimal RESP2 client: one connection per command.

/** A reply of a Redis server (RESP2). Error replies nested in arrays stay `RespError`s. */
export type RespReply = string | number | null | RespError | RespReply[];

/** An error reply (`-ERR …`) of a Redis server. */
export class RespError extends Error {
  override readonly name = 'RespError';
}

function encodeCommand(args: readonly string[]): Buffer {
  const parts = [`*${args.length}\r\n`];
  for (const a of args) parts.push(`$${Buffer.byteLength(a)}\r\n${a}\r\n`);
  return Buffer.from(parts.join(''), 'utf8');
}

/** Parses one reply at `pos`; undefined while `buf` does not hold all of it yet. */
function parseReply(buf: Buffer, pos: number): { reply: RespReply; next: number } | undefined {
  const eol = buf.indexOf('\r\n', pos);
  if (eol < 0) return undefined;
  const line = buf.toString('utf8', pos + 1, eol);
  const next = eol + 2;
  switch (buf[pos]) {
    case 0x2b: // +
      return { reply: line, next };
    case 0x2d: // -
      return { reply: new RespError(line), next };
    case 0x3a: // :
      return { reply: Number(line), next };
    case 0x24: {
      // $
      const len = Number(line);
      if (len < 0) return { reply: null, next };
      if (buf.length < next + len + 2) return undefined;
      return { reply: buf.toString('utf8', next, next + len), next: next + len + 2 };
    }
    case 0x2a: {
      // *
      const count = Number(line);
      if (count < 0) return { reply: null, next };
      const items: RespReply[] = [];
      let at = next;
      for (let i = 0; i < count; i++) {
        const item = parseReply(buf, at);
        if (!item) return undefined;
        items.push(item.reply);
        at = item.next;
      }
      return { reply: items, next: at };
    }
    default:
      throw new Error(`not a RESP reply: ${JSON.stringify(buf.toString('utf8', pos, eol))}`);
  }
}

/**
 * Sends one command to the Redis server (or sentinel) at `host:port` on a fresh connection
 * and returns its reply; an error reply rejects with a `RespError`.
 */
export function redisCommand(
  port: number,
  args: readonly string[],
  opts: { host?: string; timeoutMs?: number } = {},
): Promise<RespReply> {
  const host = opts.host ?? '127.0.0.1';
  const timeoutMs = opts.timeoutMs ?? 1000;
  return new Promise((resolve, reject) => {
    const socket = connect(port, host);
    let buf: Buffer = Buffer.alloc(0);
    const fail = (e: Error): void => {
      socket.destroy();
      reject(e);
    };
    socket.setTimeout(timeoutMs, () =>
      fail(new Error(`${host}:${port}: no reply to ${args[0]} within ${timeoutMs} ms`)),
    );
    socket.on('error', fail);
    socket.once('close', () => fail(new Error(`${host}:${port}: closed before replying`)));
    socket.once('connect', () => socket.write(encodeCommand(args)));
    socket.on('data', (chunk: Buffer) => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      let parsed;
      try {
        parsed = parseReply(buf, 0);
      } catch (e) {
        fail(e as Error);
        return;
      }
      if (!parsed) return;
      socket.removeAllListeners('close');
      socket.destroy();
      if (parsed.reply instanceof RespError) reject(parsed.reply);
      else resolve(parsed.reply);
    });
  });
}

/** `INFO <section>` as key → value. */
async function info(port: number, section: string): Promise<Record<string, string>> {
  const text = await redisCommand(port, ['INFO', section]);
  const out: Record<string, string> = {};
  for (const line of String(text).split('\r\n')) {
    const i = line.indexOf(':');
    if (i > 0 && !line.startsWith('#')) out[line.slice(0, i)] = line.slice(i + 1);
  }
  return out;
}

/** A reply of `SENTINEL replicas|sentinels` (arrays of flat key/value arrays) as records. */
function records(reply: RespReply): Record<string, string>[] {
  if (!Array.isArray(reply)) throw new Error(`expected an array, got ${JSON.stringify(reply)}`);
  return reply.map((flat) => {
    const r: Record<string, string> = {};
    if (Array.isArray(flat))
      for (let i = 0; i + 1 < flat.length; i += 2) r[String(flat[i])] = String(flat[i + 1]);
    return r;
  });
}

// ---------------------------------------------------------------------------------------
// Processes

/** A redis-server this fixture started, with the tail of its log. */
class RedisProcess {
  private readonly lines: string[] = [];
  private spawnError: Error | undefined;
  readonly exited: Promise<void>;

  constructor(
    readonly label: string,
    readonly port: number,
    private readonly child: ChildProcess,
  ) {
    const keep = (b: Buffer): void => {
      this.lines.push(...b.toString('utf8').trimEnd().split('\n'));
      if (this.lines.length > 300) this.lines.splice(0, this.lines.length - 300);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    this.exited = new Promise((resolve) => {
      child.once('error', (e) => {
        this.spawnError = e;
        resolve();
      });
      child.once('exit', () => resolve());
    });
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  get running(): boolean {
    return (
      this.spawnError === undefined &&
      this.child.pid !== undefined &&
      this.child.exitCode === null &&
      this.child.signalCode === null
    );
  }

  /** Why it is not running, for error messages. */
  get ended(): string {
    if (this.spawnError) return `could not start: ${this.spawnError.message}`;
    return `exited (code ${this.child.exitCode}, signal ${this.child.signalCode})`;
  }

  log(lines = 30): string {
    return `--- ${this.label} (port ${this.port}) log:\n${this.lines.slice(-lines).join('\n')}`;
  }

  /** SIGKILL by PID; resolves once it has been reaped. */
  async kill(): Promise<void> {
    try {
      if (this.running) process.kill(this.pid, 'SIGKILL');
    } catch {
      // exited meanwhile
    }
    await this.exited;
  }
}

/**
 * Polls `check` (which throws while not there yet) every 50 ms until it returns, failing
 * with the last reason and the logs of `watch` when one of them exits or time runs out.
 */
async function until<T>(
  what: string,
  timeoutMs: number,
  watch: readonly RedisProcess[],
  check: () => Promise<T>,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const dead = watch.find((p) => !p.running);
    if (dead) {
      await dead.exited; // a failed spawn reports its error a tick later
      throw new Error(`${dead.label} ${dead.ended} while waiting for ${what}\n${dead.log()}`);
    }
    let why: string;
    try {
      return await check();
    } catch (e) {
      why = (e as Error).message;
    }
    if (Date.now() >= deadline) {
      const logs = watch.map((p) => p.log(15)).join('\n');
      throw new Error(`${what}: not within ${timeoutMs} ms (last: ${why})\n${logs}`);
    }
    await sleep(50);
  }
}

function notYet(why: string): never {
  throw new Error(why);
}

// ---------------------------------------------------------------------------------------
// The fixture

export interface RedisSentinelOptions {
  /** The name the sentinels monitor the primary under (default `calyx`). */
  masterName?: string;
  /** Replicas of the primary (default 1, at least 1). */
  replicas?: number;
  /** Sentinels (default 3); the quorum is a majority of them (2 of 3). */
  sentinels?: number;
  /** `down-after-milliseconds` (default 1000). */
  downAfterMs?: number;
  /** `failover-timeout` (default 3000). */
  failoverTimeoutMs?: number;
}

export interface RedisNode {
  readonly port: number;
  readonly pid: number;
}

export interface RedisEndpoint {
  host: string;
  port: number;
}

export interface StartedRedisSentinel extends AsyncDisposable {
  readonly masterName: string;
  /** The server started as primary (it stays this object after a failover). */
  readonly primary: RedisNode;
  /** The servers started as replicas of `primary`. */
  readonly replicas: readonly RedisNode[];
  readonly sentinels: readonly RedisNode[];
  readonly sentinelEndpoints: readonly RedisEndpoint[];
  /** `redis+sentinel://127.0.0.1:<s1>,127.0.0.1:<s2>,…/<masterName>` */
  readonly url: string;
  /** The temporary dir holding every process's config file and data (one dir per process). */
  readonly dataDir: string;
  /** The primary as the first answering sentinel reports it (SENTINEL get-master-addr-by-name). */
  currentPrimary(): Promise<RedisEndpoint>;
  /** SIGKILLs, by PID, whichever server the sentinels report as primary; resolves once it is gone. */
  killPrimary(): Promise<{ port: number }>;
  /**
   * Waits until every sentinel that answers (a majority at least) reports a primary other than
   * `oldPort` and that server's ROLE is master. `elapsedMs` counts from the moment killPrimary
   * killed `oldPort`, or from this call when it did not.
   */
  waitForFailover(
    oldPort: number,
    timeoutMs?: number,
  ): Promise<RedisEndpoint & { elapsedMs: number }>;
  /** Stops every process by PID (sentinels first) and removes the temporary dir. Idempotent. */
  stop(): Promise<void>;
}

const HOST = '127.0.0.1';

/**
 * The config file every process starts from (`redis-server <file> …`): loopback only, no
 * persistence. Sentinels must have a writable config file; the data servers get one too so
 * that the CONFIG REWRITE a sentinel sends with a promotion or reconfiguration succeeds.
 */
function baseConfig(port: number, dir: string): string[] {
  return [
    `port ${port}`,
    `bind ${HOST}`,
    // Loopback clients are allowed in protected mode, so sentinels reach each other with it on.
    'protected-mode yes',
    'daemonize no',
    'logfile ""',
    `dir ${JSON.stringify(dir)}`,
    'save ""',
    'appendonly no',
    // Redis 7 waits 5 s by default before a diskless full sync, hoping for more replicas.
    'repl-diskless-sync-delay 0',
  ];
}

function positiveInt(name: string, v: number, min: number): number {
  if (!Number.isInteger(v) || v < min) throw new Error(`${name} must be an integer ≥ ${min}`);
  return v;
}

/**
 * Starts a primary, `replicas` replicas of it and `sentinels` sentinels monitoring it, and
 * resolves once the replicas are in sync and every sentinel knows the primary, the replicas
 * and the other sentinels. Failing to start stops whatever it started.
 */
export async function startRedisSentinel(
  opts: RedisSentinelOptions = {},
): Promise<StartedRedisSentinel> {
  const masterName = opts.masterName ?? 'calyx';
  if (!/^[A-Za-z0-9._-]+$/.test(masterName))
    throw new Error(`masterName must be letters, digits, '.', '_' or '-': ${masterName}`);
  const replicaCount = positiveInt('replicas', opts.replicas ?? 1, 1);
  const sentinelCount = positiveInt('sentinels', opts.sentinels ?? 3, 1);
  const downAfterMs = positiveInt('downAfterMs', opts.downAfterMs ?? 1000, 1);
  const failoverTimeoutMs = positiveInt('failoverTimeoutMs', opts.failoverTimeoutMs ?? 3000, 1);
  const quorum = Math.floor(sentinelCount / 2) + 1;

  const dataDir = await mkdtemp(join(tmpdir(), 'calyx-redis-sentinel-'));
  const servers: RedisProcess[] = [];
  const sentinels: RedisProcess[] = [];
  const killedAt = new Map<number, number>();
  const ports = new Set<number>();
  let stopped = false;

  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    for (const group of [sentinels, servers]) {
      await stopPids(group.filter((p) => p.running).map((p) => p.pid));
      // stopPids ends with SIGKILL without waiting: wait until each is reaped, so that no
      // PID of ours is left (not even as a zombie) once stop() resolves.
      await Promise.all(group.map((p) => p.kill()));
    }
    await rm(dataDir, { recursive: true, force: true });
  };

  /** Writes `<dataDir>/<label>/redis.conf` and runs `redis-server <conf> …args`. */
  const launch = async (
    label: string,
    config: string[],
    args: string[],
    group: RedisProcess[],
  ): Promise<RedisProcess> => {
    // A port handed out a moment ago may not be bound yet: never hand it out twice.
    let port = await freePort();
    while (ports.has(port)) port = await freePort();
    ports.add(port);
    const dir = join(dataDir, label);
    await mkdir(dir);
    const conf = join(dir, 'redis.conf');
    await writeFile(conf, [...baseConfig(port, dir), ...config, ''].join('\n'));
    const child = spawn('redis-server', [conf, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    const p = new RedisProcess(label, port, child);
    group.push(p);
    return p;
  };

  try {
    const primary = await launch('primary', [], [], servers);
    await until('primary answering PING', 10_000, [primary], () =>
      redisCommand(primary.port, ['PING']),
    );
    const replicas: RedisProcess[] = [];
    for (let i = 1; i <= replicaCount; i++)
      replicas.push(
        await launch(`replica-${i}`, [], ['--replicaof', HOST, String(primary.port)], servers),
      );
    for (const r of replicas)
      await until(`${r.label} in sync`, 15_000, [primary, r], async () => {
        const s = (await info(r.port, 'replication'))['master_link_status'];
        if (s !== 'up') notYet(`master_link_status:${s}`);
      });
    // The sentinels learn the replicas from the primary's INFO, which they ask right away and
    // then only every 10 s: start them once the primary lists every replica as online.
    await until('primary listing its replicas online', 10_000, servers, async () => {
      const repl = await info(primary.port, 'replication');
      const online = Object.entries(repl).filter(
        ([k, v]) => /^slave\d+$/.test(k) && v.includes('state=online'),
      ).length;
      if (online !== replicaCount) notYet(`${online} of ${replicaCount} replicas online`);
    });

    const m = masterName;
    for (let i = 1; i <= sentinelCount; i++)
      await launch(
        `sentinel-${i}`,
        [
          `sentinel monitor ${m} ${HOST} ${primary.port} ${quorum}`,
          `sentinel down-after-milliseconds ${m} ${downAfterMs}`,
          `sentinel failover-timeout ${m} ${failoverTimeoutMs}`,
          `sentinel parallel-syncs ${m} 1`,
        ],
        ['--sentinel'],
        sentinels,
      );
    const replicaPorts = replicas.map((r) => String(r.port)).sort();
    for (const s of sentinels)
      await until(
        `${s.label} knowing the primary, replicas and sentinels`,
        20_000,
        [s],
        async () => {
          const addr = await redisCommand(s.port, [
            'SENTINEL',
            'get-master-addr-by-name',
            masterName,
          ]);
          if (!Array.isArray(addr) || Number(addr[1]) !== primary.port)
            notYet(`master address ${JSON.stringify(addr)}`);
          const known = records(await redisCommand(s.port, ['SENTINEL', 'replicas', masterName]));
          const healthy = known
            .filter((r) => r['flags'] === 'slave' && r['master-link-status'] === 'ok')
            .map((r) => r['port'])
            .sort();
          if (JSON.stringify(healthy) !== JSON.stringify(replicaPorts))
            notYet(`replicas ${JSON.stringify(known.map((r) => [r['port'], r['flags']]))}`);
          const peers = records(await redisCommand(s.port, ['SENTINEL', 'sentinels', masterName]));
          if (peers.length !== sentinelCount - 1)
            notYet(`${peers.length} of ${sentinelCount - 1} other sentinels known`);
        },
      );

    const node = (p: RedisProcess): RedisNode => ({ port: p.port, pid: p.pid });
    const sentinelEndpoints = sentinels.map((s) => ({ host: HOST, port: s.port }));

    const currentPrimary = async (): Promise<RedisEndpoint> => {
      const errors: string[] = [];
      for (const s of sentinels) {
        if (!s.running) continue;
        try {
          const addr = await redisCommand(s.port, [
            'SENTINEL',
            'get-master-addr-by-name',
            masterName,
          ]);
          if (Array.isArray(addr)) return { host: String(addr[0]), port: Number(addr[1]) };
          errors.push(`${s.label}: ${JSON.stringify(addr)}`);
        } catch (e) {
          errors.push(`${s.label}: ${(e as Error).message}`);
        }
      }
      throw new Error(`no sentinel reported the primary of ${masterName}: ${errors.join('; ')}`);
    };

    const killPrimary = async (): Promise<{ port: number }> => {
      const { port } = await currentPrimary();
      const p = servers.find((s) => s.port === port && s.running);
      if (!p) throw new Error(`the primary the sentinels report (port ${port}) is not running`);
      await p.kill();
      killedAt.set(port, Date.now());
      return { port };
    };

    const waitForFailover = async (
      oldPort: number,
      timeoutMs = 30_000,
    ): Promise<RedisEndpoint & { elapsedMs: number }> => {
      const since = killedAt.get(oldPort) ?? Date.now();
      const live = sentinels.filter((s) => s.running);
      const found = await until(`failover away from port ${oldPort}`, timeoutMs, live, async () => {
        const seen = new Set<string>();
        let answered = 0;
        for (const s of live) {
          try {
            const addr = await redisCommand(s.port, [
              'SENTINEL',
              'get-master-addr-by-name',
              masterName,
            ]);
            answered++;
            if (Array.isArray(addr)) seen.add(`${String(addr[0])}:${String(addr[1])}`);
          } catch {
            // a sentinel not answering does not vote
          }
        }
        if (answered < quorum) notYet(`${answered} sentinels answered, ${quorum} needed`);
        const [only, ...others] = [...seen];
        if (!only || others.length > 0) notYet(`sentinels report ${JSON.stringify([...seen])}`);
        const [host = HOST, portText] = only.split(':');
        const port = Number(portText);
        if (port === oldPort) notYet(`sentinels still report port ${oldPort}`);
        const role = await redisCommand(port, ['ROLE'], { host });
        if (!Array.isArray(role) || role[0] !== 'master')
          notYet(`port ${port} has role ${JSON.stringify(role)}`);
        return { host, port };
      });
      return { ...found, elapsedMs: Date.now() - since };
    };

    return {
      masterName,
      primary: node(primary),
      replicas: replicas.map(node),
      sentinels: sentinels.map(node),
      sentinelEndpoints,
      url: `redis+sentinel://${sentinelEndpoints.map((e) => `${e.host}:${e.port}`).join(',')}/${masterName}`,
      dataDir,
      currentPrimary,
      killPrimary,
      waitForFailover,
      stop,
      [Symbol.asyncDispose]: stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}

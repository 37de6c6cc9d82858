import { spawn, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sleep } from '@calyx/core';
import { freePort } from './ports.js';
import { stopPids } from './testbed.js';

/** A server process this run started: stopped by its PID, data dir removed. */
export interface StartedService extends AsyncDisposable {
  readonly pid: number;
  readonly dataDir: string;
  stop(): Promise<void>;
}

async function waitFor(
  what: string,
  check: () => Promise<boolean>,
  child: ChildProcess,
  timeoutMs: number,
  log: () => string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null)
      throw new Error(`${what} exited with ${child.exitCode} while starting:\n${log()}`);
    if (await check()) return;
    await sleep(50);
  }
  throw new Error(`${what} did not come up within ${timeoutMs} ms:\n${log()}`);
}

function tcpOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

function service(
  child: ChildProcess,
  dataDir: string,
  extra: Record<string, unknown>,
): StartedService & Record<string, unknown> {
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    if (child.pid) await stopPids([child.pid]);
    await rm(dataDir, { recursive: true, force: true });
  };
  return { pid: child.pid ?? -1, dataDir, stop, [Symbol.asyncDispose]: stop, ...extra };
}

function capture(child: ChildProcess): () => string {
  const lines: string[] = [];
  const keep = (b: Buffer): void => {
    lines.push(...b.toString('utf8').split('\n'));
    if (lines.length > 200) lines.splice(0, lines.length - 200);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  return () => lines.slice(-30).join('\n');
}

export interface StartedEtcd extends StartedService {
  /** `http://127.0.0.1:<port>` */
  readonly endpoint: string;
  readonly clientPort: number;
  readonly peerPort: number;
  readonly name: string;
}

export interface EtcdOptions {
  name?: string;
  /** For clusters: `name=http://127.0.0.1:port,…` and this member's peer port. */
  initialCluster?: string;
  peerPort?: number;
  clientPort?: number;
  clusterState?: 'new' | 'existing';
  dataDir?: string;
  extraArgs?: string[];
}

/** Debian's etcd on free loopback ports with a temporary data dir. */
export async function startEtcd(opts: EtcdOptions = {}): Promise<StartedEtcd> {
  const name = opts.name ?? 'calyx-test';
  const clientPort = opts.clientPort ?? (await freePort());
  const peerPort = opts.peerPort ?? (await freePort());
  const dataDir = opts.dataDir ?? (await mkdtemp(join(tmpdir(), 'calyx-etcd-')));
  const peerUrl = `http://127.0.0.1:${peerPort}`;
  const clientUrl = `http://127.0.0.1:${clientPort}`;
  const child = spawn(
    'etcd',
    [
      '--name',
      name,
      '--data-dir',
      dataDir,
      '--listen-client-urls',
      clientUrl,
      '--advertise-client-urls',
      clientUrl,
      '--listen-peer-urls',
      peerUrl,
      '--initial-advertise-peer-urls',
      peerUrl,
      '--initial-cluster',
      opts.initialCluster ?? `${name}=${peerUrl}`,
      '--initial-cluster-state',
      opts.clusterState ?? 'new',
      '--initial-cluster-token',
      'calyx-test',
      '--logger',
      'zap',
      '--log-level',
      'warn',
      ...(opts.extraArgs ?? []),
    ],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ETCD_UNSUPPORTED_ARCH: process.env.ETCD_UNSUPPORTED_ARCH ?? '' },
    },
  );
  const log = capture(child);
  const healthy = async (): Promise<boolean> => {
    try {
      const r = await fetch(`${clientUrl}/health`, { signal: AbortSignal.timeout(500) });
      return r.ok && ((await r.json()) as { health?: string }).health === 'true';
    } catch {
      return false;
    }
  };
  const svc = service(child, dataDir, { endpoint: clientUrl, clientPort, peerPort, name });
  try {
    // A member of a cluster that is still forming answers /health only once there is quorum.
    if (opts.initialCluster && opts.initialCluster.includes(','))
      await waitFor('etcd', () => tcpOpen(clientPort), child, 20_000, log);
    else await waitFor('etcd', healthy, child, 20_000, log);
  } catch (e) {
    await svc.stop();
    throw e;
  }
  return svc as unknown as StartedEtcd;
}

export interface StartedRedis extends StartedService {
  readonly port: number;
  /** `redis://127.0.0.1:<port>` */
  readonly url: string;
}

/** Debian's redis-server on a free loopback port, no persistence, temporary dir. */
export async function startRedis(
  opts: { port?: number; extraArgs?: string[] } = {},
): Promise<StartedRedis> {
  const port = opts.port ?? (await freePort());
  const dataDir = await mkdtemp(join(tmpdir(), 'calyx-redis-'));
  const child = spawn(
    'redis-server',
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--dir',
      dataDir,
      '--save',
      '',
      '--appendonly',
      'no',
      '--daemonize',
      'no',
      '--protected-mode',
      'yes',
      ...(opts.extraArgs ?? []),
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const log = capture(child);
  const svc = service(child, dataDir, { port, url: `redis://127.0.0.1:${port}` });
  try {
    await waitFor('redis-server', () => tcpOpen(port), child, 10_000, log);
  } catch (e) {
    await svc.stop();
    throw e;
  }
  return svc as unknown as StartedRedis;
}

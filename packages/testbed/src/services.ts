import { spawn, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sleep } from '@calyx/core';
import { freePort, freePorts } from './ports.js';
import { stopPids } from './testbed.js';

/** A server process this run started: stopped by its PID, data dir removed. */
export interface StartedService extends AsyncDisposable {
  readonly pid: number;
  readonly dataDir: string;
  /** Stops it (SIGTERM, then SIGKILL) and removes its data. */
  stop(): Promise<void>;
  /** Kills it at once (SIGKILL) and keeps its data: a crash, for restart tests. */
  kill(): Promise<void>;
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
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    if (child.pid) await stopPids([child.pid]);
    await rm(dataDir, { recursive: true, force: true });
  };
  const kill = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  };
  return { pid: child.pid ?? -1, dataDir, stop, kill, [Symbol.asyncDispose]: stop, ...extra };
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
  /** Serve clients over TLS with these files (a `TestPki`); require client certificates. */
  tls?: TestPki;
}

/**
 * A 3-member (or n-member) etcd cluster on loopback, for fault tests: members can be killed
 * (data kept) and restarted, and the current leader found.
 */
export class EtcdCluster implements AsyncDisposable {
  private constructor(
    readonly members: (StartedEtcd | undefined)[],
    private readonly specs: {
      name: string;
      clientPort: number;
      peerPort: number;
      dataDir: string;
    }[],
    private readonly initialCluster: string,
  ) {}

  static async start(size = 3): Promise<EtcdCluster> {
    const specs = [];
    const ports = await freePorts(2 * size);
    for (let i = 0; i < size; i++)
      specs.push({
        name: `m${i}`,
        clientPort: ports[2 * i]!,
        peerPort: ports[2 * i + 1]!,
        dataDir: await mkdtemp(join(tmpdir(), `calyx-etcd-m${i}-`)),
      });
    const initialCluster = specs.map((m) => `${m.name}=http://127.0.0.1:${m.peerPort}`).join(',');
    const cluster = new EtcdCluster([], specs, initialCluster);
    try {
      const started = await Promise.all(specs.map((_, i) => cluster.startMember(i, 'new')));
      started.forEach((m, i) => (cluster.members[i] = m));
      await cluster.leader(20_000);
    } catch (e) {
      await cluster.stop();
      throw e;
    }
    return cluster;
  }

  private startMember(i: number, state: 'new' | 'existing'): Promise<StartedEtcd> {
    const m = this.specs[i]!;
    return startEtcd({ ...m, initialCluster: this.initialCluster, clusterState: state });
  }

  /** Client URLs of every member. */
  get endpoints(): string[] {
    return this.specs.map((m) => `http://127.0.0.1:${m.clientPort}`);
  }

  /** The index of the current leader, as the members see it. */
  async leader(timeoutMs = 10_000): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      for (const [i, url] of this.endpoints.entries()) {
        if (!this.members[i]) continue;
        try {
          const r = await fetch(`${url}/v3/maintenance/status`, {
            method: 'POST',
            body: '{}',
            signal: AbortSignal.timeout(500),
          });
          const s = (await r.json()) as { leader?: string; header?: { member_id?: string } };
          if (s.leader && s.leader === s.header?.member_id) return i;
        } catch {
          // not answering (yet)
        }
      }
      if (Date.now() > deadline) throw new Error('no etcd leader');
      await sleep(50);
    }
  }

  /** SIGKILL, data kept. */
  async kill(i: number): Promise<void> {
    const m = this.members[i];
    this.members[i] = undefined;
    await m?.kill();
  }

  /** Starts a killed member again on its data. */
  async restart(i: number): Promise<void> {
    this.members[i] = await this.startMember(i, 'existing');
  }

  async stop(): Promise<void> {
    for (const m of this.members) await m?.kill();
    for (const m of this.specs) await rm(m.dataDir, { recursive: true, force: true });
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}

/** Files of a throwaway certificate authority: a server certificate for 127.0.0.1 and a client one. */
export interface TestPki {
  dir: string;
  ca: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
}

/** Creates a CA, a server certificate (127.0.0.1, localhost) and a client certificate with openssl. */
export async function makeTestPki(dir: string): Promise<TestPki> {
  const f = (n: string) => join(dir, n);
  const run = (args: string[]) =>
    new Promise<void>((resolve, reject) => {
      const c = spawn('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
      let err = '';
      c.stderr.on('data', (d: Buffer) => (err += d.toString()));
      c.on('error', reject);
      c.on('exit', (code) =>
        code === 0 ? resolve() : reject(new Error(`openssl ${args[0]}: ${err}`)),
      );
    });
  const key = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await run([
    'req',
    '-x509',
    ...key,
    '-keyout',
    f('ca.key'),
    '-out',
    f('ca.crt'),
    '-days',
    '2',
    '-subj',
    '/CN=calyx-test-ca',
  ]);
  for (const [name, ext] of [
    ['server', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth'],
    ['client', 'extendedKeyUsage=clientAuth'],
  ] as const) {
    await writeFile(f(`${name}.ext`), `${ext}\n`);
    await run([
      'req',
      ...key,
      '-keyout',
      f(`${name}.key`),
      '-out',
      f(`${name}.csr`),
      '-subj',
      `/CN=calyx-${name}`,
    ]);
    await run([
      'x509',
      '-req',
      '-in',
      f(`${name}.csr`),
      '-CA',
      f('ca.crt'),
      '-CAkey',
      f('ca.key'),
      '-CAcreateserial',
      '-out',
      f(`${name}.crt`),
      '-days',
      '2',
      '-extfile',
      f(`${name}.ext`),
    ]);
  }
  return {
    dir,
    ca: f('ca.crt'),
    serverCert: f('server.crt'),
    serverKey: f('server.key'),
    clientCert: f('client.crt'),
    clientKey: f('client.key'),
  };
}

/**
 * Starts a service on ports chosen a moment ago; should another process have bound one
 * meanwhile (test files run in parallel), again on new ports.
 */
async function onFreePorts<T>(auto: boolean, start: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await start();
    } catch (e) {
      if (!auto || attempt >= 3 || !/address already in use/i.test((e as Error).message)) throw e;
    }
  }
}

/** Debian's etcd on free loopback ports with a temporary data dir. */
export function startEtcd(opts: EtcdOptions = {}): Promise<StartedEtcd> {
  return onFreePorts(opts.clientPort === undefined && opts.peerPort === undefined, () =>
    startEtcdOnce(opts),
  );
}

async function startEtcdOnce(opts: EtcdOptions): Promise<StartedEtcd> {
  const name = opts.name ?? 'calyx-test';
  const [freeClient, freePeer] =
    opts.clientPort === undefined || opts.peerPort === undefined
      ? await freePorts(2)
      : [undefined, undefined];
  const clientPort = opts.clientPort ?? freeClient!;
  const peerPort = opts.peerPort ?? freePeer!;
  const dataDir = opts.dataDir ?? (await mkdtemp(join(tmpdir(), 'calyx-etcd-')));
  const peerUrl = `http://127.0.0.1:${peerPort}`;
  const clientUrl = `${opts.tls ? 'https' : 'http'}://127.0.0.1:${clientPort}`;
  const tlsArgs = opts.tls
    ? [
        '--cert-file',
        opts.tls.serverCert,
        '--key-file',
        opts.tls.serverKey,
        '--trusted-ca-file',
        opts.tls.ca,
        '--client-cert-auth',
      ]
    : [];
  const child = spawn(
    'etcd',
    [
      ...tlsArgs,
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
    if ((opts.initialCluster && opts.initialCluster.includes(',')) || opts.tls)
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
export function startRedis(
  opts: { port?: number; extraArgs?: string[] } = {},
): Promise<StartedRedis> {
  return onFreePorts(opts.port === undefined, () => startRedisOnce(opts));
}

async function startRedisOnce(opts: {
  port?: number;
  extraArgs?: string[];
}): Promise<StartedRedis> {
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

import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger, sleep, type Logger } from '@calyx/core';
import {
  CommandError,
  ExecCommandRunner,
  assertInterfaceName,
  type CommandResult,
  type CommandRunner,
  type RunOptions,
} from '@calyx/dataplane';
import { creatorPid, newRunId } from './names.js';
import { Pinger } from './pinger.js';
import { TrafficProbe } from './traffic-probe.js';

export interface TestHost {
  /** Logical name (`compute-1`). */
  name: string;
  /** Its network namespace. */
  netns: string;
  /** Address on the fabric. */
  ipv4: string;
  ipv6: string;
  /** Interface towards the fabric inside the host namespace. */
  fabricInterface: string;
}

export interface VmAddressV4 {
  address: string;
  prefixLength: number;
  gateway: string;
}

export interface VmAddressV6 {
  address: string;
  gateway: string;
}

export interface TestVm {
  name: string;
  netns: string;
  host: TestHost;
  tapName: string;
  mac: string;
  ipv4?: VmAddressV4;
  ipv6?: VmAddressV6;
}

export interface TestbedOptions {
  runner?: CommandRunner;
  logger?: Logger;
  /** Dispose on SIGINT/SIGTERM (then re-raise). Default true. */
  cleanupOnSignal?: boolean;
  /** IPv4 /24 and IPv6 /64 of the fabric. */
  fabricV4Prefix?: string;
  fabricV6Prefix?: string;
}

/**
 * Compute hosts, VMs, a route reflector and an edge router, all as network namespaces of
 * this run. Nothing is ever configured outside them. `dispose()` (also on SIGINT/SIGTERM)
 * stops every process left inside them, by PID, then deletes them.
 */
export class Testbed implements AsyncDisposable {
  readonly runId: string;
  readonly runner: CommandRunner;
  readonly fabricNetns: string;
  readonly hosts = new Map<string, TestHost>();
  readonly vms = new Map<string, TestVm>();
  private readonly logger: Logger;
  private readonly namespaces: string[] = [];
  private readonly pids = new Set<number>();
  private readonly tempDirs: string[] = [];
  private readonly v4Prefix: string;
  private readonly v6Prefix: string;
  private nextHostIndex = 1;
  private probeDir: string | undefined;
  private disposed = false;
  private readonly onSignal: (signal: NodeJS.Signals) => void;

  private constructor(opts: TestbedOptions) {
    this.runId = newRunId();
    this.runner = ownSpawned(opts.runner ?? new ExecCommandRunner(), this.pids);
    this.logger = (opts.logger ?? silentLogger).child({ testbed: this.runId });
    this.fabricNetns = `${this.runId}-fab`;
    this.v4Prefix = opts.fabricV4Prefix ?? '172.31.0';
    this.v6Prefix = opts.fabricV6Prefix ?? 'fd00:fab';
    this.onSignal = (signal) => {
      void this.dispose().finally(() => {
        process.kill(process.pid, signal);
      });
    };
    if (opts.cleanupOnSignal ?? true) {
      process.once('SIGINT', this.onSignal);
      process.once('SIGTERM', this.onSignal);
    }
  }

  /** Creates the fabric (a namespace with a bridge). Removes leftovers of dead earlier runs first. */
  static async create(opts: TestbedOptions = {}): Promise<Testbed> {
    const bed = new Testbed(opts);
    try {
      await sweepStaleNamespaces(bed.runner, bed.logger);
      await bed.addNamespace(bed.fabricNetns);
      await bed.exec(bed.fabricNetns, ['ip', 'link', 'add', 'br0', 'type', 'bridge']);
      await bed.exec(bed.fabricNetns, ['ip', 'link', 'set', 'br0', 'up']);
    } catch (e) {
      await bed.dispose();
      throw e;
    }
    return bed;
  }

  /** Runs a command inside one of this run's namespaces. */
  exec(
    netns: string,
    argv: readonly string[],
    opts: Omit<RunOptions, 'netns'> = {},
  ): Promise<CommandResult> {
    if (!this.namespaces.includes(netns))
      throw new Error(`namespace ${netns} does not belong to testbed ${this.runId}`);
    return this.runner.run(argv, { ...opts, netns });
  }

  private async addNamespace(netns: string): Promise<void> {
    await this.runner.run(['ip', 'netns', 'add', netns]);
    this.namespaces.push(netns);
    await this.runner.run(['ip', 'link', 'set', 'lo', 'up'], { netns });
  }

  /** A temporary directory removed on dispose. */
  async tempDir(label: string): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), `${this.runId}-${label}-`));
    this.tempDirs.push(dir);
    // Daemons that drop privileges (dnsmasq runs as nobody) must be able to enter it.
    await chmod(dir, 0o755);
    return dir;
  }

  /** Remembers a process to stop (by PID) on dispose. */
  trackPid(pid: number): void {
    if (pid > 0) this.pids.add(pid);
  }

  /**
   * A host namespace with a veth into the fabric bridge. The host's routing (ip_forward,
   * routes) is left to whatever the test runs there — normally the Calyx agent.
   */
  async addHost(name: string): Promise<TestHost> {
    if (this.hosts.has(name)) throw new Error(`host ${name} exists`);
    const index = this.nextHostIndex++;
    const netns = `${this.runId}-h${index}`;
    const host: TestHost = {
      name,
      netns,
      ipv4: `${this.v4Prefix}.${index}`,
      ipv6: `${this.v6Prefix}::${index.toString(16)}`,
      fabricInterface: 'fab0',
    };
    await this.addNamespace(netns);
    const peer = assertInterfaceName(`h${index}`);
    await this.exec(netns, [
      'ip',
      'link',
      'add',
      'fab0',
      'type',
      'veth',
      'peer',
      'name',
      peer,
      'netns',
      this.fabricNetns,
    ]);
    await this.exec(this.fabricNetns, ['ip', 'link', 'set', peer, 'master', 'br0', 'up']);
    await this.exec(netns, ['ip', 'addr', 'add', `${host.ipv4}/24`, 'dev', 'fab0']);
    await this.exec(netns, ['ip', '-6', 'addr', 'add', `${host.ipv6}/64`, 'dev', 'fab0', 'nodad']);
    await this.exec(netns, ['ip', 'link', 'set', 'fab0', 'up']);
    // Carrier on (the bridge side is up too) before anyone sends over it.
    await this.waitForOperUp(netns, 'fab0');
    this.hosts.set(name, host);
    return host;
  }

  /**
   * A VM: its own namespace, `eth0` veth'd to `tapName` in the host namespace, addresses and
   * default routes configured statically (DHCP tests configure them through a client instead).
   */
  async addVm(
    host: TestHost,
    opts: {
      name: string;
      tapName: string;
      mac: string;
      ipv4?: VmAddressV4;
      ipv6?: VmAddressV6;
      mtu?: number;
      tapUp?: boolean;
    },
  ): Promise<TestVm> {
    if (this.vms.has(opts.name)) throw new Error(`vm ${opts.name} exists`);
    assertInterfaceName(opts.tapName);
    const netns = `${this.runId}-v${this.vms.size + 1}`;
    await this.addNamespace(netns);
    await this.exec(netns, [
      'ip',
      'link',
      'add',
      'eth0',
      'type',
      'veth',
      'peer',
      'name',
      opts.tapName,
      'netns',
      host.netns,
    ]);
    await this.exec(netns, [
      'ip',
      'link',
      'set',
      'eth0',
      'address',
      opts.mac,
      ...(opts.mtu ? ['mtu', String(opts.mtu)] : []),
    ]);
    await this.exec(netns, ['ip', 'link', 'set', 'eth0', 'up']);
    if (opts.tapUp ?? true) {
      await this.exec(host.netns, ['ip', 'link', 'set', opts.tapName, 'up']);
      // The kernel activates a new link's queue from its linkwatch work, up to a second after
      // carrier comes up; until then packets are dropped. A plugged VM is one whose wire works.
      await this.waitForOperUp(netns, 'eth0');
      await this.waitForOperUp(host.netns, opts.tapName);
    }
    const vm: TestVm = { name: opts.name, netns, host, tapName: opts.tapName, mac: opts.mac };
    if (opts.ipv4) {
      vm.ipv4 = opts.ipv4;
      await this.exec(netns, [
        'ip',
        'addr',
        'add',
        `${opts.ipv4.address}/${opts.ipv4.prefixLength}`,
        'dev',
        'eth0',
      ]);
      await this.exec(netns, [
        'ip',
        'route',
        'add',
        'default',
        'via',
        opts.ipv4.gateway,
        'dev',
        'eth0',
      ]);
    }
    if (opts.ipv6) {
      vm.ipv6 = opts.ipv6;
      await this.exec(netns, [
        'ip',
        '-6',
        'addr',
        'add',
        `${opts.ipv6.address}/128`,
        'dev',
        'eth0',
        'nodad',
      ]);
      await this.exec(netns, [
        'ip',
        '-6',
        'route',
        'add',
        'default',
        'via',
        opts.ipv6.gateway,
        'dev',
        'eth0',
        'onlink',
      ]);
    }
    this.vms.set(opts.name, vm);
    return vm;
  }

  /** Waits until an interface's operational state is UP (carrier on, queue active). */
  async waitForOperUp(netns: string, ifname: string, timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const r = await this.exec(netns, ['ip', '-json', 'link', 'show', 'dev', ifname]);
      const link = (JSON.parse(r.stdout || '[]') as { operstate?: string; qdisc?: string }[])[0];
      if (link?.operstate === 'UP' && link.qdisc !== 'noop') return;
      if (Date.now() > deadline)
        throw new Error(`${ifname} in ${netns} not operationally up after ${timeoutMs} ms`);
      await sleep(10);
    }
  }

  /** TCP/UDP servers on `ports` and connects from inside a VM or host namespace; stopped on dispose. */
  async startTrafficProbe(
    at: TestVm | TestHost,
    ports: { tcp?: readonly number[]; udp?: readonly number[] } = {},
  ): Promise<TrafficProbe> {
    this.probeDir ??= await this.tempDir('probes');
    const probe = await TrafficProbe.start(this.runner, at.netns, this.probeDir, ports);
    this.trackPid(probe.pid);
    return probe;
  }

  /** Unplugs a VM: its namespace and tap go away. */
  async removeVm(vm: TestVm): Promise<void> {
    await this.killNamespaceProcesses(vm.netns);
    await this.runner.run(['ip', 'netns', 'del', vm.netns]);
    this.namespaces.splice(this.namespaces.indexOf(vm.netns), 1);
    this.vms.delete(vm.name);
  }

  /** One ping; true when a reply came back within `timeoutS`. */
  async ping(from: TestVm | TestHost, target: string, timeoutS = 1): Promise<boolean> {
    const family = target.includes(':') ? '-6' : '-4';
    try {
      await this.runner.run(['ping', family, '-n', '-c', '1', '-W', String(timeoutS), target], {
        netns: from.netns,
      });
      return true;
    } catch (e) {
      if (e instanceof CommandError) return false;
      throw e;
    }
  }

  /**
   * Pings until a reply arrives; rejects after `timeoutMs`. Returns the time it took. A ping
   * that exits at once (no route yet: `connect: Network is unreachable`) is started again.
   */
  async waitForPing(from: TestVm | TestHost, target: string, timeoutMs = 15_000): Promise<number> {
    const t0 = performance.now();
    const deadline = t0 + timeoutMs;
    let why = '';
    let restarts = 0;
    while (performance.now() < deadline) {
      const pinger = this.startPinger(from, target, 20);
      let timer: NodeJS.Timeout | undefined;
      try {
        const outcome = await Promise.race([
          pinger.waitForReplies(1).then(
            () => 'reply' as const,
            (e: Error) => {
              why = e.message;
              return 'ended' as const;
            },
          ),
          new Promise<'timeout'>((r) => {
            timer = setTimeout(() => r('timeout'), Math.max(0, deadline - performance.now()));
          }),
        ]);
        if (outcome === 'reply') return performance.now() - t0;
        if (outcome === 'timeout') break;
      } finally {
        clearTimeout(timer);
        await pinger.stop();
      }
      await sleep(Math.min(200, 20 * 2 ** restarts++));
    }
    throw new Error(
      `no ping reply from ${target} to ${from.name} within ${timeoutMs} ms${why ? ` (last: ${why})` : ''}`,
    );
  }

  /**
   * Repeats one-shot pings (each waiting `attemptMs`) until one is answered; returns the
   * performance.now() at which the answered ping exited (just after its reply arrived).
   * Unlike a continuous `ping -i`, which sends about once a second until its first reply,
   * this probes at a steady rate.
   */
  async firstReply(
    from: TestVm | TestHost,
    target: string,
    opts: { attemptMs?: number; timeoutMs?: number } = {},
  ): Promise<number> {
    const attempt = String((opts.attemptMs ?? 20) / 1000);
    const deadline = performance.now() + (opts.timeoutMs ?? 15_000);
    const family = target.includes(':') ? '-6' : '-4';
    while (performance.now() < deadline) {
      try {
        await this.runner.run(['ping', family, '-n', '-q', '-c', '1', '-W', attempt, target], {
          netns: from.netns,
        });
        return performance.now();
      } catch (e) {
        if (!(e instanceof CommandError)) throw e;
      }
    }
    throw new Error(
      `no reply from ${target} to ${from.name} within ${opts.timeoutMs ?? 15_000} ms`,
    );
  }

  /** A continuous ping from `from`; stop it to get loss statistics. */
  startPinger(from: TestVm | TestHost, target: string, intervalMs = 10): Pinger {
    return new Pinger(this.runner, from.netns, target, intervalMs);
  }

  /** Routes of a namespace (`ip -json route show`), optionally of one family. */
  async routes(
    netns: string,
    family: 4 | 6 = 4,
  ): Promise<{ dst: string; dev?: string; gateway?: string; protocol?: string }[]> {
    const r = await this.exec(netns, ['ip', `-${family}`, '-json', 'route', 'show']);
    return JSON.parse(r.stdout || '[]') as {
      dst: string;
      dev?: string;
      gateway?: string;
      protocol?: string;
    }[];
  }

  private async killNamespaceProcesses(netns: string): Promise<void> {
    let pids: number[];
    try {
      const r = await this.runner.run(['ip', 'netns', 'pids', netns]);
      pids = r.stdout
        .split(/\s+/)
        .filter(Boolean)
        .map(Number)
        .filter((p) => p > 0 && p !== process.pid);
    } catch {
      return;
    }
    await stopPids(pids);
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    process.removeListener('SIGINT', this.onSignal);
    process.removeListener('SIGTERM', this.onSignal);
    await stopPids([...this.pids]);
    // Anything still running inside our namespaces was started by this run (daemons that
    // forked, clients): stop those by PID too before the namespaces go.
    for (const ns of [...this.namespaces].reverse()) await this.killNamespaceProcesses(ns);
    for (const ns of [...this.namespaces].reverse()) {
      try {
        await this.runner.run(['ip', 'netns', 'del', ns]);
      } catch (e) {
        this.logger.warn({ ns, err: (e as Error).message }, 'could not delete namespace');
      }
    }
    this.namespaces.length = 0;
    for (const d of this.tempDirs) await rm(d, { recursive: true, force: true });
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.dispose();
  }
}

/**
 * The testbed's runner: every process it spawns is stopped on dispose while it still runs —
 * also one that has not entered its namespace yet when dispose lists the namespace's
 * processes. A PID is forgotten when its process exits, so a reused PID is never signalled.
 */
function ownSpawned(inner: CommandRunner, pids: Set<number>): CommandRunner {
  return {
    run: (argv, opts) => inner.run(argv, opts),
    spawn: (argv, opts) => {
      const child = inner.spawn(argv, opts);
      if (child.pid > 0) {
        pids.add(child.pid);
        void child.exited.then(() => pids.delete(child.pid));
      }
      return child;
    },
  };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** SIGTERM, then SIGKILL for whatever is still alive after 2 s. */
export async function stopPids(pids: readonly number[]): Promise<void> {
  const live = pids.filter(alive);
  for (const p of live) {
    try {
      process.kill(p, 'SIGTERM');
    } catch {
      /* gone */
    }
  }
  const deadline = Date.now() + 2000;
  while (live.some(alive) && Date.now() < deadline) await sleep(20);
  for (const p of live.filter(alive)) {
    try {
      process.kill(p, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
}

/** Deletes namespaces of earlier runs whose creating process is gone (after a crash or kill -9). */
export async function sweepStaleNamespaces(
  runner: CommandRunner,
  logger: Logger = silentLogger,
): Promise<string[]> {
  const r = await runner.run(['ip', '-json', 'netns', 'list']);
  const names = (JSON.parse(r.stdout || '[]') as { name: string }[]).map((n) => n.name);
  const stale = names.filter((n) => {
    const pid = creatorPid(n);
    return pid !== undefined && pid !== process.pid && !alive(pid);
  });
  for (const ns of stale) {
    try {
      const pids = (await runner.run(['ip', 'netns', 'pids', ns])).stdout
        .split(/\s+/)
        .filter(Boolean)
        .map(Number);
      await stopPids(pids);
      await runner.run(['ip', 'netns', 'del', ns]);
      logger.info({ ns }, 'removed a stale namespace of a dead run');
    } catch (e) {
      logger.warn({ ns, err: (e as Error).message }, 'could not remove a stale namespace');
    }
  }
  return stale;
}

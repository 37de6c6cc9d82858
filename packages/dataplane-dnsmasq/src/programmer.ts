import { readdirSync, rmSync } from 'node:fs';
import { chmod, chown, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  silentLogger,
  sleep,
  systemClock,
  type Clock,
  type Logger,
  type TimerHandle,
} from '@calyx/core';
import {
  assertAbsolutePath,
  writeFileAtomicSync,
  type CommandRunner,
  type Programmer,
  type ReconcileReport,
} from '@calyx/dataplane';
import {
  peerInterfaceName,
  renderCommandLine,
  renderHostFiles,
  renderOpts,
  validateInstance,
  type HostFiles,
  type DnsmasqInstance,
  type DnsmasqPaths,
  type RenderOptions,
} from './render.js';

export interface DnsmasqProgrammerOptions {
  runner: CommandRunner;
  /** Where each instance keeps its files (`<stateDir>/<instance>/`). */
  stateDir: string;
  netns?: string;
  logger?: Logger;
  clock?: Clock;
  /** DNS domain of the ports' names. Default `calyxlocal`. */
  domain?: string;
  leaseSeconds?: number;
  /** Default `tap*`. */
  endpointInterfacePattern?: string;
  /** dnsmasq drops privileges to this user. Default `nobody`. */
  user?: string;
  logDhcp?: boolean;
  /** A burst of changes within this window costs one reload. Default 100 ms. */
  reloadDebounceMs?: number;
}

interface Running {
  instance: DnsmasqInstance;
  argv: string[];
  /** What dnsmasq's files hold (bulk files and directories together), as last written or read; undefined: read again. */
  files:
    | { dhcp: Map<string, string>; dns: Map<string, string>; inBulk: Set<string>; opts: string }
    | undefined;
  /** The latest desired files, written into the bulk files at the next reload. */
  desired?: { want: HostFiles; opts: string };
  /** Files written into the directories since the last compaction. */
  inDirs: Set<string>;
  memo: Map<string, [string, string, string]>;
  pid: number | undefined;
  /** Meant to be running: set when started or adopted, cleared when stopped on purpose. */
  wanted: boolean;
  /** The gateway addresses last seen/put on the interface (undefined: read it again). */
  addresses: string | undefined;
}

function alive(pid: number | undefined): pid is number {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Runs one dnsmasq per desired instance. A new port is one new file in the instance's hosts
 * directories, which dnsmasq reads through inotify — no reload, no restart; a removed or
 * changed port (or changed options) costs a SIGHUP, debounced so a burst costs one; only a
 * change of the served subnets (on the command line) restarts it. A dnsmasq that dies is restarted by `watch()`. dnsmasq is daemonized: it keeps serving
 * while the agent restarts, and a restarted programmer adopts it.
 */
export class DnsmasqProgrammer implements Programmer<DnsmasqInstance[]> {
  private readonly runner: CommandRunner;
  private readonly netns: string | undefined;
  private readonly logger: Logger;
  private readonly clock: Clock;
  private readonly render: RenderOptions;
  private readonly debounceMs: number;
  private readonly instances = new Map<string, Running>();
  private readonly pending = new Set<string>();
  private timer: TimerHandle | undefined;
  private adopted = false;
  private lock: Promise<void> = Promise.resolve();
  private userIds: { uid: number; gid: number } | undefined;
  /** SIGHUPs sent (for tests and metrics). */
  reloads = 0;
  /** Processes started (first starts and restarts). */
  starts = 0;

  constructor(private readonly opts: DnsmasqProgrammerOptions) {
    assertAbsolutePath(opts.stateDir);
    this.runner = opts.runner;
    this.netns = opts.netns;
    this.logger = (opts.logger ?? silentLogger).child({ programmer: 'dnsmasq' });
    this.clock = opts.clock ?? systemClock;
    this.debounceMs = opts.reloadDebounceMs ?? 100;
    this.render = {
      domain: opts.domain ?? 'calyxlocal',
      leaseSeconds: opts.leaseSeconds ?? 86400,
      endpointInterfacePattern: opts.endpointInterfacePattern ?? 'tap*',
      user: opts.user ?? 'nobody',
      logDhcp: opts.logDhcp ?? false,
    };
  }

  paths(name: string): DnsmasqPaths {
    const dir = join(this.opts.stateDir, name);
    return {
      dir,
      hosts: join(dir, 'host'),
      addnHosts: join(dir, 'addn_hosts'),
      hostsDir: join(dir, 'hosts.d'),
      namesDir: join(dir, 'names.d'),
      opts: join(dir, 'opts'),
      leases: join(dir, 'leases'),
      pid: join(dir, 'pid'),
      log: join(dir, 'dnsmasq.log'),
    };
  }

  /** The running dnsmasq PIDs by instance. */
  pids(): Map<string, number> {
    return new Map(
      [...this.instances].filter(([, r]) => alive(r.pid)).map(([n, r]) => [n, r.pid!]),
    );
  }

  /**
   * Instances that should be serving and are not: died (until the watchdog restarts them), or
   * being (re)started. Instances stopped on purpose (removed, or not yet started) are not listed.
   */
  notRunning(): string[] {
    return [...this.instances].filter(([, r]) => r.wanted && !alive(r.pid)).map(([n]) => n);
  }

  private ip(args: string[], okExitCodes?: number[]) {
    return this.runner.run(['ip', ...args], {
      ...(this.netns ? { netns: this.netns } : {}),
      ...(okExitCodes ? { okExitCodes } : {}),
    });
  }

  private async ids(): Promise<{ uid: number; gid: number }> {
    if (!this.userIds) {
      const passwd = await readFile('/etc/passwd', 'utf8');
      const line = passwd.split('\n').find((l) => l.startsWith(`${this.render.user}:`));
      const [, , uid, gid] = (line ?? '').split(':');
      this.userIds = { uid: Number(uid ?? 65534), gid: Number(gid ?? 65534) };
    }
    return this.userIds;
  }

  /** The instance interface (a veth pair, so dnsmasq has a second interface to list) with the gateways as `/prefix noprefixroute`. */
  private async ensureInterface(inst: DnsmasqInstance): Promise<number> {
    const dev = inst.interfaceName;
    const peer = peerInterfaceName(dev);
    const r = await this.ip(['-json', 'addr', 'show', 'dev', dev], [0, 1]);
    let changes = 0;
    let have = new Set<string>();
    if (r.exitCode !== 0) {
      await this.ip(['link', 'add', dev, 'type', 'veth', 'peer', 'name', peer]);
      await this.ip(['link', 'set', peer, 'up']);
      await this.ip(['link', 'set', dev, 'up']);
      changes++;
    } else {
      const info = (
        JSON.parse(r.stdout || '[]') as {
          addr_info?: { family: string; local: string; prefixlen: number }[];
        }[]
      )[0];
      have = new Set(
        (info?.addr_info ?? [])
          .filter((a) => a.family === 'inet')
          .map((a) => `${a.local}/${a.prefixlen}`),
      );
    }
    const want = new Set(inst.subnets.map((s) => `${s.gateway}/${s.prefixLength}`));
    const batch: string[] = [];
    for (const a of have) if (!want.has(a)) batch.push(`address del ${a} dev ${dev}`);
    // noprefixroute: dnsmasq sees the subnet's netmask, but no connected route is created
    // (one would make proxy ARP answer for every unused address of the subnet).
    for (const a of want) if (!have.has(a)) batch.push(`address add ${a} dev ${dev} noprefixroute`);
    if (batch.length) {
      await this.runner.run(['ip', '-batch', '-'], {
        ...(this.netns ? { netns: this.netns } : {}),
        input: batch.join('\n') + '\n',
      });
      changes += batch.length;
    }
    return changes;
  }

  private async readDir(dir: string): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    let names: string[];
    try {
      names = await readdir(dir);
    } catch {
      return out;
    }
    for (const n of names)
      if (!n.startsWith('.')) out.set(n, await readFile(join(dir, n), 'utf8').catch(() => ''));
    return out;
  }

  /** Per-port file content as it appears in the bulk files (one `mac,…` line block per port). */
  private static bulkEntries(
    text: string,
    keyOf: (line: string) => string | undefined,
  ): Map<string, string> {
    const out = new Map<string, string>();
    for (const line of text.split('\n')) {
      if (!line) continue;
      const k = keyOf(line);
      if (k) out.set(k, `${out.get(k) ?? ''}${line}\n`);
    }
    return out;
  }

  /**
   * Two layers per instance: bulk files (`host`, `addn_hosts`) read on reload, and inotify-
   * watched directories for ports added since. A new port is one new file in each directory —
   * dnsmasq reads it at once, no reload, whatever the number of ports. A removed or changed
   * port (or changed options) needs a reload: the bulk files are rewritten with everything
   * and the directories emptied at the (debounced) SIGHUP, so a reload always reads a few
   * large files, as fast as a classic one.
   */
  private async writeFiles(
    inst: DnsmasqInstance,
    run: Running,
  ): Promise<{ changed: boolean; reload: boolean }> {
    const p = this.paths(inst.name);
    if (run.memo.size > 4 * inst.hosts.length + 1024) run.memo.clear();
    const want = renderHostFiles(inst, this.render.domain, run.memo);
    const opts = renderOpts(inst);
    if (!run.files) {
      await mkdir(p.hostsDir, { recursive: true, mode: 0o755 });
      await mkdir(p.namesDir, { recursive: true, mode: 0o755 });
      const macKey = (line: string) => line.slice(0, 17).replace(/:/g, '-');
      const bulkDhcp = DnsmasqProgrammer.bulkEntries(
        await readFile(p.hosts, 'utf8').catch(() => ''),
        macKey,
      );
      const dirDhcp = await this.readDir(p.hostsDir);
      for (const k of dirDhcp.keys()) run.inDirs.add(k);
      // The names files are keyed like the DHCP ones; the bulk names file is regenerated, so
      // trusting the DHCP view of what is in bulk is enough.
      run.files = {
        dhcp: new Map([...bulkDhcp, ...dirDhcp]),
        dns: new Map([...(await this.readDir(p.namesDir))]),
        inBulk: new Set(bulkDhcp.keys()),
        opts: await readFile(p.opts, 'utf8').catch(() => ''),
      };
      // After a restart the names of bulk ports come from the bulk file.
      for (const k of bulkDhcp.keys())
        if (!run.files.dns.has(k) && want.dns.has(k)) run.files.dns.set(k, want.dns.get(k)!);
    }
    const have = run.files;
    let changed = false;
    let reload = false;
    for (const [name, content] of want.dhcp) {
      const before = have.dhcp.get(name);
      if (before === content && have.dns.get(name) === want.dns.get(name)) continue;
      changed = true;
      if (before !== undefined) {
        reload = true; // a change: dnsmasq keeps the old entry until a reload
        continue;
      }
      writeFileAtomicSync(join(p.hostsDir, name), content);
      writeFileAtomicSync(join(p.namesDir, name), want.dns.get(name) ?? '');
      run.inDirs.add(name);
      have.dhcp.set(name, content);
      have.dns.set(name, want.dns.get(name) ?? '');
    }
    if ([...have.dhcp.keys()].some((name) => !want.dhcp.has(name)) || have.opts !== opts) {
      changed = true;
      reload = true;
    }
    run.desired = { want, opts };
    return { changed, reload };
  }

  /** Rewrites the bulk files from the latest desired state and empties the directories (at reload time). */
  private compact(run: Running): void {
    const p = this.paths(run.instance.name);
    const d = run.desired;
    if (!d || !run.files) return;
    writeFileAtomicSync(p.hosts, [...d.want.dhcp.values()].join(''));
    writeFileAtomicSync(p.addnHosts, [...d.want.dns.values()].join(''));
    if (run.files.opts !== d.opts) writeFileAtomicSync(p.opts, d.opts);
    run.files = {
      dhcp: new Map(d.want.dhcp),
      dns: new Map(d.want.dns),
      inBulk: new Set(d.want.dhcp.keys()),
      opts: d.opts,
    };
  }

  /** Empties the directories: their ports are in the bulk files the reload just read. */
  private emptyDirs(run: Running, all = false): void {
    const p = this.paths(run.instance.name);
    for (const dir of [p.hostsDir, p.namesDir]) {
      let names: Iterable<string> = run.inDirs;
      if (all) {
        try {
          names = readdirSync(dir);
        } catch {
          continue;
        }
      }
      for (const n of names) rmSync(join(dir, n), { force: true });
    }
    run.inDirs.clear();
  }

  private async readCmdline(pid: number): Promise<string[] | undefined> {
    try {
      return (await readFile(`/proc/${pid}/cmdline`, 'utf8'))
        .split('\0')
        .filter((x) => x.length > 0);
    } catch {
      return undefined;
    }
  }

  private async readPid(name: string): Promise<number | undefined> {
    const pid = Number((await readFile(this.paths(name).pid, 'utf8').catch(() => '')).trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  }

  private async start(run: Running): Promise<void> {
    run.wanted = true;
    const p = this.paths(run.instance.name);
    const { uid, gid } = await this.ids();
    await mkdir(p.dir, { recursive: true, mode: 0o755 });
    await chown(p.dir, uid, gid);
    await writeFile(p.leases, '', { flag: 'a' });
    await chown(p.leases, uid, gid);
    await rm(p.pid, { force: true });
    // dnsmasq reports start-up errors before its parent exits, then runs as a daemon.
    await this.runner.run(run.argv, {
      ...(this.netns ? { netns: this.netns } : {}),
      timeoutMs: 30_000,
    });
    for (let i = 0; i < 200 && !alive(run.pid); i++) {
      run.pid = await this.readPid(run.instance.name);
      if (!alive(run.pid)) await sleep(10);
    }
    if (!alive(run.pid))
      throw new Error(`dnsmasq ${run.instance.name} did not start (see ${p.log})`);
    this.starts++;
    this.logger.info({ instance: run.instance.name, pid: run.pid }, 'dnsmasq started');
  }

  private async stop(run: Running): Promise<void> {
    run.wanted = false;
    const pid = run.pid;
    if (!alive(pid)) return;
    process.kill(pid, 'SIGTERM');
    for (let i = 0; i < 500 && alive(pid); i++) await sleep(10);
    if (alive(pid)) process.kill(pid, 'SIGKILL');
    run.pid = undefined;
  }

  /** After a restart of the agent: adopt dnsmasqs left running by the previous one. */
  private async adopt(): Promise<void> {
    this.adopted = true;
    let names: string[];
    try {
      names = (await readdir(this.opts.stateDir, { withFileTypes: true }))
        .filter((d) => d.isDirectory())
        .map((d) => d.name);
    } catch {
      return;
    }
    for (const name of names) {
      if (this.instances.has(name)) continue;
      const pid = await this.readPid(name);
      if (!alive(pid)) continue;
      const argv = (await this.readCmdline(pid)) ?? [];
      if (!argv[0]?.endsWith('dnsmasq')) continue;
      this.instances.set(name, {
        instance: { name, interfaceName: '', subnets: [], hosts: [] },
        argv,
        files: undefined,
        pid,
        wanted: true,
        addresses: undefined,
        inDirs: new Set(),
        memo: new Map(),
      });
    }
  }

  /** Runs `fn` after every earlier exclusive section: apply and the watchdog never interleave. */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.lock.then(fn);
    this.lock = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  apply(desired: DnsmasqInstance[]): Promise<ReconcileReport> {
    return this.exclusive(() => this.applyNow(desired));
  }

  private async applyNow(desired: DnsmasqInstance[]): Promise<ReconcileReport> {
    const t0 = performance.now();
    desired.forEach(validateInstance);
    if (new Set(desired.map((d) => d.name)).size !== desired.length)
      throw new Error('dnsmasq instance names must be unique');
    if (!this.adopted) {
      // dnsmasq re-reads its files as an unprivileged user: the state dir must let it in.
      await mkdir(this.opts.stateDir, { recursive: true, mode: 0o755 });
      await chmod(this.opts.stateDir, 0o755);
      await this.adopt();
    }
    let changes = 0;
    const wanted = new Set(desired.map((d) => d.name));
    for (const [name, run] of this.instances) {
      if (wanted.has(name)) continue;
      await this.stop(run);
      if (run.instance.interfaceName)
        await this.ip(['link', 'del', run.instance.interfaceName], [0, 1]);
      await rm(this.paths(name).dir, { recursive: true, force: true });
      this.instances.delete(name);
      this.pending.delete(name);
      changes++;
      this.logger.info({ instance: name }, 'dnsmasq instance removed');
    }
    for (const inst of desired) {
      const p = this.paths(inst.name);
      if (!this.instances.has(inst.name)) await mkdir(p.dir, { recursive: true, mode: 0o755 });
      const argv = renderCommandLine(inst, p, this.render);
      let run = this.instances.get(inst.name);
      if (!run) {
        run = {
          instance: inst,
          argv,
          files: undefined,
          pid: undefined,
          wanted: false,
          addresses: undefined,
          inDirs: new Set(),
          memo: new Map(),
        };
        this.instances.set(inst.name, run);
      }
      run.instance = inst;
      // The interface is read only when its addresses might differ (new subnets, or a resync).
      const addresses = inst.subnets
        .map((s) => `${s.gateway}/${s.prefixLength}`)
        .sort()
        .join(',');
      if (run.addresses !== addresses) {
        changes += await this.ensureInterface(inst);
        run.addresses = addresses;
      }
      const files = await this.writeFiles(inst, run);
      const sameArgv = run.argv.join('\0') === argv.join('\0');
      if (alive(run.pid) && sameArgv) {
        if (files.reload) this.scheduleReload(inst.name);
        if (files.changed) changes++;
        continue;
      }
      // Not running, or the served subnets changed (they are on the command line): (re)start,
      // with everything in the bulk files.
      if (alive(run.pid)) {
        this.logger.info({ instance: inst.name }, 'served subnets changed: restarting dnsmasq');
        await this.stop(run);
      }
      this.compact(run);
      this.emptyDirs(run, true);
      run.argv = argv;
      await this.start(run);
      this.pending.delete(inst.name);
      changes++;
    }
    return {
      changes,
      durationMs: performance.now() - t0,
      details: { instances: desired.length, pendingReloads: this.pending.size },
    };
  }

  private scheduleReload(name: string): void {
    this.pending.add(name);
    this.timer ??= this.clock.setTimeout(() => {
      this.timer = undefined;
      this.flush();
    }, this.debounceMs);
  }

  /** Sends the pending reloads now (tests, benchmarks, shutdown). */
  flush(): void {
    if (this.timer) {
      this.clock.clearTimeout(this.timer);
      this.timer = undefined;
    }
    for (const name of this.pending) {
      const run = this.instances.get(name);
      if (!run) continue;
      this.compact(run);
      if (alive(run.pid)) {
        process.kill(run.pid, 'SIGHUP');
        this.reloads++;
      }
      // dnsmasq handles the reload before these inotify removals (measured), and removing a
      // file only drops the names read from that file: the bulk copies stay.
      this.emptyDirs(run);
    }
    this.pending.clear();
  }

  invalidate(): void {
    for (const run of this.instances.values()) {
      run.files = undefined;
      run.addresses = undefined;
    }
  }

  /** Restarts any instance whose dnsmasq died. Runs until `signal` aborts. */
  async watch(signal: AbortSignal, intervalMs = 1000): Promise<void> {
    while (!signal.aborted) {
      try {
        await sleep(intervalMs, { signal, clock: this.clock });
      } catch {
        return;
      }
      // Never while an apply is stopping or starting processes on purpose.
      await this.exclusive(async () => {
        for (const run of this.instances.values()) {
          if (signal.aborted || alive(run.pid) || !run.instance.interfaceName) continue;
          this.logger.warn(
            { instance: run.instance.name, pid: run.pid },
            'dnsmasq died: restarting it',
          );
          try {
            await this.start(run);
          } catch (e) {
            this.logger.error(
              { instance: run.instance.name, err: (e as Error).message },
              'dnsmasq restart failed',
            );
          }
        }
      });
    }
  }

  /** Stops every instance and removes its interface and files (teardown). */
  async removeAll(): Promise<void> {
    await this.apply([]);
  }

  /** Stops reload timers; dnsmasq keeps running. */
  close(): void {
    this.flush();
  }
}

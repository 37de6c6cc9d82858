import { silentLogger, type Logger } from '@calyx/core';
import { type CommandRunner, type Programmer, type ReconcileReport } from '@calyx/dataplane';
import {
  emptyActual,
  planRoutes,
  tapSysctls,
  type EndpointProgramState,
  type LinkState,
  type RoutesActual,
  type RoutesDesired,
} from './plan.js';
import {
  parseAddresses,
  parseGrepH,
  parseHostRoutes,
  parseLinks,
  parseMonitorLine,
  parseNeighbours,
  parseProxies,
} from './read.js';

export interface RoutesProgrammerOptions {
  runner: CommandRunner;
  /** Program this network namespace instead of the current one. */
  netns?: string;
  logger?: Logger;
  /** Route protocol number marking our routes; only these are ever read or removed. Default 80. */
  routeProtocol?: number;
  /** Interfaces we own endpoints on (default: names starting with `tap`). */
  interfacePrefixes?: readonly string[];
  /** Interface holding the subnet gateway addresses. Default `calyx-gw`. */
  gatewayInterface?: string;
  /** Program IPv6 forwarding and proxy NDP. Default true. */
  ipv6?: boolean;
}

const SYSCTL_CHUNK = 3000;

/**
 * Programs routed L3 to local endpoints: `/32` and `/128` host routes `dev tap… scope link`
 * with our route protocol, static neighbours for the VM MACs, per-tap sysctls (proxy ARP with
 * no delay, forwarding, proxy NDP), and the subnet gateways held on a dedicated interface so
 * the host answers ARP/NDP for them. Reads the actual state on the first apply (and after
 * `invalidate()`), then applies only differences in one `ip -batch`.
 */
export class RoutesProgrammer implements Programmer<RoutesDesired> {
  private readonly runner: CommandRunner;
  private readonly netns: string | undefined;
  private readonly logger: Logger;
  private readonly proto: number;
  private readonly prefixes: readonly string[];
  private readonly gatewayInterface: string;
  private readonly ipv6: boolean;
  private actual: RoutesActual | undefined;
  private links: Map<string, LinkState> | undefined;
  private lastStatus = new Map<string, EndpointProgramState>();

  constructor(opts: RoutesProgrammerOptions) {
    this.runner = opts.runner;
    this.netns = opts.netns;
    this.logger = (opts.logger ?? silentLogger).child({ programmer: 'routes' });
    this.proto = opts.routeProtocol ?? 80;
    this.prefixes = opts.interfacePrefixes ?? ['tap'];
    this.gatewayInterface = opts.gatewayInterface ?? 'calyx-gw';
    this.ipv6 = opts.ipv6 ?? true;
    if (!Number.isInteger(this.proto) || this.proto < 1 || this.proto > 255)
      throw new RangeError('routeProtocol must be 1..255');
  }

  /** Whether an interface is one of ours (an endpoint interface). */
  owns(dev: string): boolean {
    return this.prefixes.some((p) => dev.startsWith(p));
  }

  /** Per endpoint interface, the outcome of the last apply. */
  get status(): ReadonlyMap<string, EndpointProgramState> {
    return this.lastStatus;
  }

  invalidate(): void {
    this.actual = undefined;
    this.links = undefined;
  }

  private ip(args: string[], input?: string, okExitCodes?: number[]) {
    return this.runner.run(['ip', ...args], {
      ...(this.netns ? { netns: this.netns } : {}),
      ...(input !== undefined ? { input } : {}),
      ...(okExitCodes ? { okExitCodes } : {}),
    });
  }

  /** `grep -H . files…` in chunks that fit the argument limit; missing files are skipped. */
  private async readFiles(paths: string[]): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    for (let i = 0; i < paths.length; i += SYSCTL_CHUNK) {
      const r = await this.runner.run(['grep', '-H', '.', ...paths.slice(i, i + SYSCTL_CHUNK)], {
        ...(this.netns ? { netns: this.netns } : {}),
        okExitCodes: [0, 1, 2],
      });
      for (const [k, v] of parseGrepH(r.stdout)) out.set(k, v);
    }
    return out;
  }

  /** All sysctl writes in one `sysctl -p -`, in order (host-wide first). */
  private async writeSysctls(assignments: string[]): Promise<void> {
    if (assignments.length === 0) return;
    await this.runner.run(['sysctl', '-q', '-p', '-'], {
      ...(this.netns ? { netns: this.netns } : {}),
      input: assignments.map((a) => a.replace('=', ' = ')).join('\n') + '\n',
      // A tap that vanished mid-way fails its keys; the next apply sees the link is gone.
      okExitCodes: [0, 1, 255],
    });
  }

  /**
   * Reads what we own in one or two `ip -json -batch` calls: links, our routes, permanent
   * neighbours, the gateway interface's addresses (and, for IPv6, routes and proxy entries).
   */
  private async readState(): Promise<{ links: Map<string, LinkState>; actual: RoutesActual }> {
    const accept = (dev: string): boolean => this.owns(dev);
    const proto = String(this.proto);
    // `addr show` goes first: after a `link show` in the same batch, iproute2 6.1 prints no
    // addresses. It is the only command that can fail (no gateway interface yet), which the
    // exit code tells.
    const v4 = await this.ip(
      ['-json', '-force', '-batch', '-'],
      [
        `addr show dev ${this.gatewayInterface}`,
        'link show',
        `route show table main proto ${proto}`,
        'neigh show nud permanent',
      ].join('\n') + '\n',
      [0, 1],
    );
    const lines = v4.stdout.split('\n').filter((l) => l.startsWith('['));
    const addrJson = v4.exitCode === 0 ? lines.shift() : undefined;
    const [linksJson = '[]', routesJson = '[]', neighJson = '[]'] = lines;
    const links = parseLinks(linksJson);
    const actual = emptyActual();
    actual.routes = parseHostRoutes(routesJson, accept);
    actual.neighbours = parseNeighbours(neighJson, accept);
    actual.gatewayAddresses =
      links.has(this.gatewayInterface) && addrJson ? parseAddresses(addrJson) : new Set();
    if (this.ipv6) {
      const v6 = await this.ip(
        ['-6', '-json', '-batch', '-'],
        `route show table main proto ${proto}\nneigh show proxy\n`,
      );
      const [r6 = '[]', proxies = '[]'] = v6.stdout.split('\n').filter((l) => l.startsWith('['));
      for (const [k, v] of parseHostRoutes(r6, accept)) actual.routes.set(k, v);
      actual.proxies = parseProxies(proxies, accept);
    }
    return { links, actual };
  }

  /**
   * Host-wide forwarding (written only when off: writing ip_forward resets every interface's
   * forwarding) and, for interfaces that already carry our routes (a restarted agent), their
   * sysctls, so they are not rewritten.
   */
  private hostSysctlPaths(): string[] {
    return [
      '/proc/sys/net/ipv4/ip_forward',
      ...(this.ipv6 ? ['/proc/sys/net/ipv6/conf/all/forwarding'] : []),
    ];
  }

  private async readSysctls(
    links: Map<string, LinkState>,
    actual: RoutesActual,
    hostValues: Map<string, string>,
  ): Promise<string[]> {
    const host = this.hostSysctlPaths();
    const programmed = new Set(actual.routes.values());
    const taps = [...links.values()].filter((l) => l.up && programmed.has(l.name));
    const tapPaths = (l: LinkState) =>
      tapSysctls(l.name, this.ipv6).map((s) => `/proc/sys/${s.slice(0, s.indexOf('='))}`);
    const values = taps.length
      ? await this.readFiles(taps.flatMap(tapPaths))
      : new Map<string, string>();
    for (const [k, v] of hostValues) values.set(k, v);
    const writes: string[] = [];
    if (values.get(host[0]!) !== '1') writes.push('net/ipv4/ip_forward=1');
    if (this.ipv6 && values.get(host[1]!) !== '1') writes.push('net/ipv6/conf/all/forwarding=1');
    if (writes.length === 0) {
      for (const l of taps) {
        const ok = tapSysctls(l.name, this.ipv6).every(
          (s) =>
            values.get(`/proc/sys/${s.slice(0, s.indexOf('='))}`) === s.slice(s.indexOf('=') + 1),
        );
        if (ok) actual.configured.set(l.name, l.ifindex);
      }
    }
    return writes;
  }

  /**
   * Batch lines creating the gateway interface: a dummy where the kernel has them, else a
   * veth pair. Exactly one of the two `link add` lines fails, which is expected.
   */
  private gatewayInterfaceLines(): string[] {
    const gw = this.gatewayInterface;
    const peer = `${gw}p`.slice(0, 15);
    return [
      `link add ${gw} type dummy`,
      `link add ${gw} type veth peer name ${peer}`,
      `link set ${peer} up`,
      `link set ${gw} up`,
    ];
  }

  private async createGatewayInterface(): Promise<void> {
    await this.ip(
      ['-force', '-batch', '-'],
      this.gatewayInterfaceLines().join('\n') + '\n',
      [0, 1],
    );
  }

  async apply(desired: RoutesDesired): Promise<ReconcileReport> {
    const t0 = performance.now();
    let hostWrites: string[] = [];
    let prelude: string[] = [];
    if (!this.actual || !this.links) {
      // The host-wide sysctls are read alongside the interface state.
      const [state, hostValues] = await Promise.all([
        this.readState(),
        this.readFiles(this.hostSysctlPaths()),
      ]);
      if (!state.links.has(this.gatewayInterface)) {
        // Created in the same batch as everything else, ahead of its addresses.
        prelude = this.gatewayInterfaceLines();
        state.links.set(this.gatewayInterface, {
          name: this.gatewayInterface,
          ifindex: -1,
          up: true,
        });
        this.logger.info({ interface: this.gatewayInterface }, 'creating the gateway interface');
      }
      hostWrites = await this.readSysctls(state.links, state.actual, hostValues);
      this.links = state.links;
      this.actual = state.actual;
    }
    const plan = planRoutes(desired, this.actual, this.links, {
      routeProtocol: this.proto,
      gatewayInterface: this.gatewayInterface,
    });
    // Sysctls before routes: a tap must answer ARP by the time its route exists.
    await this.writeSysctls([...hostWrites, ...plan.sysctls]);
    let failed = false;
    const batch = [...prelude, ...plan.batch];
    if (batch.length) {
      const r = await this.ip(['-force', '-batch', '-'], batch.join('\n') + '\n', [0, 1]);
      // Line numbers of failed commands; one of the two gateway `link add` lines always fails.
      const failedLines = [...r.stderr.matchAll(/Command failed -:(\d+)/g)].map((m) =>
        Number(m[1]),
      );
      const unexpected = failedLines.filter((n) => n > 2 || prelude.length === 0);
      if (r.exitCode !== 0 && (unexpected.length > 0 || failedLines.length !== 1)) {
        failed = true;
        this.logger.warn(
          { stderr: r.stderr.split('\n').slice(0, 5).join(' | ') },
          'some route changes failed; re-reading state next time',
        );
      }
    }
    if (failed) this.invalidate();
    else this.actual = plan.next;
    this.lastStatus = plan.status;
    const changes = plan.batch.length + plan.configure.size;
    if (changes)
      this.logger.debug(
        { ...plan.counts, sysctlInterfaces: plan.configure.size },
        'routes applied',
      );
    return {
      changes,
      durationMs: performance.now() - t0,
      details: {
        ...plan.counts,
        interfacesConfigured: plan.configure.size,
        failed: failed ? 1 : 0,
      },
    };
  }

  /**
   * Follows link changes (`ip -o monitor link`) and keeps the interface table current;
   * calls `onChange` when one of our interfaces appears, goes up or down, or disappears.
   * `onReady` fires once the monitor is provably listening (it has seen a probe event of its
   * own, an alias change on the gateway interface) and the interface table has been re-read,
   * so no change can fall between the two. Runs until `signal` aborts.
   */
  async watchLinks(
    signal: AbortSignal,
    onChange: (name: string) => void,
    onReady?: () => void,
  ): Promise<void> {
    // The probe below needs the gateway interface; creating it is idempotent.
    if (!this.links?.has(this.gatewayInterface)) await this.createGatewayInterface();
    const child = this.runner.spawn(['ip', '-o', 'monitor', 'link'], {
      ...(this.netns ? { netns: this.netns } : {}),
      signal,
    });
    let ready = false;
    let probes = 0;
    const probe = async (): Promise<void> => {
      while (!ready && !signal.aborted && probes < 100) {
        await this.ip([
          'link',
          'set',
          'dev',
          this.gatewayInterface,
          'alias',
          `calyx-monitor-${probes++}`,
        ]).catch(() => undefined);
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    const probing = probe();
    try {
      for await (const line of child.lines) {
        const ev = parseMonitorLine(line);
        if (!ev) continue;
        if (!ready && ev.name === this.gatewayInterface) {
          ready = true;
          this.links = undefined;
          onReady?.();
          continue;
        }
        if (this.links) {
          if (ev.deleted) {
            if (this.links.get(ev.name)?.ifindex === ev.ifindex) this.links.delete(ev.name);
          } else this.links.set(ev.name, { name: ev.name, ifindex: ev.ifindex, up: ev.up });
        }
        if (this.owns(ev.name)) onChange(ev.name);
      }
    } finally {
      ready = true;
      child.kill();
      await probing;
    }
  }
}

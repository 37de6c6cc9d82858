import { silentLogger, type Logger } from '@calyx/core';
import {
  CommandError,
  type CommandRunner,
  type Programmer,
  type ReconcileReport,
} from '@calyx/dataplane';
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

const SYSCTL_CHUNK = 2000;

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
  private hostReady = false;
  private preparing: Promise<void> | undefined;
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
    this.hostReady = false;
  }

  private ip(args: string[], input?: string) {
    return this.runner.run(['ip', ...args], {
      ...(this.netns ? { netns: this.netns } : {}),
      ...(input !== undefined ? { input } : {}),
    });
  }

  private async readFile(paths: string[]): Promise<Map<string, string>> {
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

  private async sysctl(assignments: string[]): Promise<void> {
    for (let i = 0; i < assignments.length; i += SYSCTL_CHUNK) {
      await this.runner.run(['sysctl', '-q', '-w', ...assignments.slice(i, i + SYSCTL_CHUNK)], {
        ...(this.netns ? { netns: this.netns } : {}),
        // A tap that vanished mid-way fails its keys; the next apply sees the link is gone.
        okExitCodes: [0, 1, 255],
      });
    }
  }

  /** Host-wide forwarding and the gateway interface (one preparation at a time). */
  private prepareHost(): Promise<void> {
    this.preparing ??= this.doPrepareHost().finally(() => (this.preparing = undefined));
    return this.preparing;
  }

  /** ip_forward is written only when off: writing it resets every interface's forwarding. */
  private async doPrepareHost(): Promise<void> {
    const files = [
      '/proc/sys/net/ipv4/ip_forward',
      ...(this.ipv6 ? ['/proc/sys/net/ipv6/conf/all/forwarding'] : []),
    ];
    const now = await this.readFile(files);
    const writes: string[] = [];
    if (now.get(files[0]!) !== '1') writes.push('net/ipv4/ip_forward=1');
    if (this.ipv6 && now.get(files[1]!) !== '1') writes.push('net/ipv6/conf/all/forwarding=1');
    if (writes.length) await this.sysctl(writes);
    const links = parseLinks((await this.ip(['-json', 'link', 'show'])).stdout);
    if (!links.has(this.gatewayInterface)) {
      try {
        await this.ip(['link', 'add', this.gatewayInterface, 'type', 'dummy']);
      } catch (e) {
        // No dummy module (as on this kind of machine): a veth pair whose peer stays with it.
        if (!(e instanceof CommandError)) throw e;
        await this.ip([
          'link',
          'add',
          this.gatewayInterface,
          'type',
          'veth',
          'peer',
          'name',
          `${this.gatewayInterface}p`.slice(0, 15),
        ]);
        await this.ip(['link', 'set', `${this.gatewayInterface}p`.slice(0, 15), 'up']);
      }
      await this.ip(['link', 'set', this.gatewayInterface, 'up']);
      this.logger.info({ interface: this.gatewayInterface }, 'created the gateway interface');
    }
    this.hostReady = true;
  }

  private async readLinks(): Promise<Map<string, LinkState>> {
    return parseLinks((await this.ip(['-json', 'link', 'show'])).stdout);
  }

  private async readActual(links: Map<string, LinkState>): Promise<RoutesActual> {
    const accept = (dev: string): boolean => this.owns(dev);
    const a = emptyActual();
    a.routes = parseHostRoutes(
      (
        await this.ip([
          '-4',
          '-json',
          'route',
          'show',
          'table',
          'main',
          'proto',
          String(this.proto),
        ])
      ).stdout,
      accept,
    );
    if (this.ipv6) {
      for (const [k, v] of parseHostRoutes(
        (
          await this.ip([
            '-6',
            '-json',
            'route',
            'show',
            'table',
            'main',
            'proto',
            String(this.proto),
          ])
        ).stdout,
        accept,
      ))
        a.routes.set(k, v);
      a.proxies = parseProxies(
        (await this.ip(['-6', '-json', 'neigh', 'show', 'proxy'])).stdout,
        accept,
      );
    }
    a.neighbours = parseNeighbours(
      (await this.ip(['-json', 'neigh', 'show', 'nud', 'permanent'])).stdout,
      accept,
    );
    if (links.has(this.gatewayInterface)) {
      a.gatewayAddresses = parseAddresses(
        (await this.ip(['-json', 'addr', 'show', 'dev', this.gatewayInterface])).stdout,
      );
    }
    // Adopt interfaces whose sysctls are already right, so a restart rewrites nothing.
    const taps = [...links.values()].filter((l) => this.owns(l.name) && l.up);
    const paths = taps.flatMap((l) =>
      tapSysctls(l.name, this.ipv6).map((s) => `/proc/sys/${s.slice(0, s.indexOf('='))}`),
    );
    const values = await this.readFile(paths);
    for (const l of taps) {
      const ok = tapSysctls(l.name, this.ipv6).every(
        (s) =>
          values.get(`/proc/sys/${s.slice(0, s.indexOf('='))}`) === s.slice(s.indexOf('=') + 1),
      );
      if (ok) a.configured.set(l.name, l.ifindex);
    }
    return a;
  }

  async apply(desired: RoutesDesired): Promise<ReconcileReport> {
    const t0 = performance.now();
    if (!this.hostReady) await this.prepareHost();
    this.links ??= await this.readLinks();
    this.actual ??= await this.readActual(this.links);
    const plan = planRoutes(desired, this.actual, this.links, {
      routeProtocol: this.proto,
      gatewayInterface: this.gatewayInterface,
    });
    // Sysctls before routes: a tap must answer ARP by the time its route exists.
    if (plan.sysctls.length) await this.sysctl(plan.sysctls);
    let failed = false;
    if (plan.batch.length) {
      const r = await this.runner.run(['ip', '-force', '-batch', '-'], {
        ...(this.netns ? { netns: this.netns } : {}),
        input: plan.batch.join('\n') + '\n',
        okExitCodes: [0, 1],
      });
      if (r.exitCode !== 0) {
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
    if (!this.hostReady) await this.prepareHost();
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

import { randomUUID } from 'node:crypto';
import { silentLogger, type Logger } from '@calyx/core';
import type { Datastore } from '@calyx/datastore';
import { createMemoryDatastore, type MemoryDatastore } from '@calyx/datastore-memory';
import { CalyxDriver } from '@calyx/driver';
import { agentConfig, createAgent, type Agent } from '@calyx/agent';
import { createDhcpAgent, dhcpAgentConfig, type DhcpAgent } from '@calyx/dhcp-agent';
import { BirdController, type BirdConfig } from '@calyx/dataplane-bird';
import { DhcpClients, Testbed, type DhcpLease, type TestHost, type TestVm } from '@calyx/testbed';
import type { Endpoint } from '@calyx/model';

export interface ClusterOptions {
  computeHosts?: number;
  routeReflector?: boolean;
  edgeRouter?: boolean;
  mesh?: boolean;
  /** Opens a datastore client (one per agent, one for the driver). Default: handles on one in-memory store. */
  openStore?: () => Promise<Datastore>;
  logger?: Logger;
  /** Agents' periodic resync (ms). */
  resyncIntervalMs?: number;
  /** Run a DHCP agent on every host (default true). */
  dhcp?: boolean;
  /** Agents' liveness TTL (default 10 s). */
  livenessTtlSeconds?: number;
  /** Agents and DHCP agents serve /livez, /readyz and /metrics on 127.0.0.1 (a free port). */
  health?: boolean;
}

export const DEPLOYMENT_AS = 64512;
export const EDGE_AS = 65000;
export const NETWORK_ID = 'net-demo';
export const PRIVATE_SUBNET = {
  id: 'subnet-private',
  cidr: '10.65.0.0/24',
  gateway: '10.65.0.1',
} as const;
export const PUBLIC_SUBNET = {
  id: 'subnet-public',
  cidr: '203.0.113.0/24',
  gateway: '203.0.113.1',
} as const;
export const V6_SUBNET = {
  id: 'subnet-v6',
  cidr: '2001:db8:65::/64',
  gateway: '2001:db8:65::1',
} as const;

/** The security group VMs get unless told otherwise: everything in and out, both families. */
export const OPEN_GROUP = 'sg-open';

export interface ClusterVm {
  port: Endpoint;
  vm: TestVm;
  ipv4: string;
  ipv6: string | undefined;
  /** What the VM's DHCP client obtained, when it used DHCP. */
  lease?: DhcpLease;
}

/**
 * A whole Calyx deployment in network namespaces: compute hosts (each with an agent), an
 * optional route reflector host (with an agent), an optional edge router (a BIRD of its own,
 * AS 65000), a driver, and VMs plugged into taps. Everything goes away on `close()`.
 */
export class Cluster implements AsyncDisposable {
  readonly agents = new Map<string, Agent>();
  readonly dhcpAgents = new Map<string, DhcpAgent>();
  private dhcpClients: DhcpClients | undefined;
  readonly hosts = new Map<string, TestHost>();
  edge: { host: TestHost; bird: BirdController } | undefined;
  private readonly stores: Datastore[] = [];
  private readonly stateDirs = new Map<string, string>();
  private nextAddress = 10;

  private constructor(
    readonly bed: Testbed,
    readonly driver: CalyxDriver,
    private readonly opts: ClusterOptions,
    private readonly openStore: () => Promise<Datastore>,
    private readonly logger: Logger,
  ) {}

  static async create(opts: ClusterOptions = {}): Promise<Cluster> {
    const logger = opts.logger ?? silentLogger;
    let openStore = opts.openStore;
    if (!openStore) {
      let root: MemoryDatastore | undefined;
      openStore = async () => (root ? root.connect() : (root = createMemoryDatastore()));
    }
    const bed = await Testbed.create({ logger });
    const store = await openStore();
    const cluster = new Cluster(bed, new CalyxDriver(store, { logger }), opts, openStore, logger);
    cluster.stores.push(store);
    try {
      await cluster.build();
    } catch (e) {
      await cluster.close();
      throw e;
    }
    return cluster;
  }

  private async build(): Promise<void> {
    const { driver, bed } = this;
    await driver.setBgpConfiguration({
      asNumber: DEPLOYMENT_AS,
      nodeToNodeMesh: this.opts.mesh ?? true,
      connectRetrySeconds: 1,
      holdSeconds: 9,
    });
    await driver.putIpPool({ name: 'private', cidr: '10.65.0.0/16' });
    await driver.putIpPool({ name: 'public', cidr: PUBLIC_SUBNET.cidr, advertise: true });
    await driver.putIpPool({ name: 'v6', cidr: '2001:db8:65::/48' });
    await driver.createNetwork({ id: NETWORK_ID, name: 'demo' });
    await driver.createSecurityGroup({
      id: OPEN_GROUP,
      name: 'open',
      rules: (['ingress', 'egress'] as const).flatMap((direction) =>
        (['IPv4', 'IPv6'] as const).map((ethertype) => ({ direction, ethertype })),
      ),
    });
    for (const s of [PRIVATE_SUBNET, PUBLIC_SUBNET, V6_SUBNET]) {
      await driver.createSubnet({
        id: s.id,
        networkId: NETWORK_ID,
        cidr: s.cidr,
        gatewayIp: s.gateway,
      });
    }
    const names = Array.from({ length: this.opts.computeHosts ?? 2 }, (_, i) => `compute-${i + 1}`);
    if (this.opts.routeReflector ?? true) names.push('rr-1');
    for (const name of names) {
      const h = await bed.addHost(name);
      this.hosts.set(name, h);
      await driver.registerHost({
        name,
        ipv4Address: h.ipv4,
        ipv6Address: h.ipv6,
        routeReflectorClusterId: name.startsWith('rr-') ? '1.0.0.1' : null,
      });
    }
    if (this.opts.edgeRouter ?? true) {
      const host = await bed.addHost('edge');
      const bird = new BirdController({
        runner: bed.runner,
        netns: host.netns,
        stateDir: await bed.tempDir('edge'),
      });
      this.edge = { host, bird };
      await bird.apply(this.edgeConfig());
      await driver.putBgpPeer({ name: 'edge', peerIp: host.ipv4, asNumber: EDGE_AS, role: 'edge' });
    }
    await Promise.all(names.map((n) => this.startAgent(n)));
  }

  /** The edge router's own BIRD: eBGP with every host, learns, tells nothing. */
  private edgeConfig(): BirdConfig {
    const host = this.edge!.host;
    return {
      routerId: host.ipv4,
      logLevel: 'info',
      endpointRouteProtocol: null,
      installRoutes: true,
      timers: { connectRetrySeconds: 1, holdSeconds: 9, gracefulRestartSeconds: 120 },
      peers: [...this.hosts.values()].map((h) => ({
        name: h.name,
        neighborAddress: h.ipv4,
        localAddress: host.ipv4,
        localAs: EDGE_AS,
        peerAs: DEPLOYMENT_AS,
        direct: true,
        routeReflectorClient: false,
        gracefulRestart: true,
        family: 4 as const,
        export: { kind: 'none' as const },
        import: 'all' as const,
      })),
    };
  }

  /** Starts (or restarts) the agent of a host; resolves when it has programmed its host. */
  async startAgent(name: string): Promise<Agent> {
    const h = this.hosts.get(name);
    if (!h) throw new Error(`no host ${name}`);
    const store = await this.openStore();
    this.stores.push(store);
    // The same state dir across restarts: the restarted agent finds the running BIRD.
    let stateDir = this.stateDirs.get(name);
    if (!stateDir) this.stateDirs.set(name, (stateDir = await this.bed.tempDir(`agent-${name}`)));
    if (this.opts.dhcp ?? true) {
      const dhcpStore = await this.openStore();
      this.stores.push(dhcpStore);
      const config = dhcpAgentConfig({
        hostname: name,
        netns: h.netns,
        stateDir: `${stateDir}/dhcp`,
        reloadDebounceMs: 20,
        ...(this.opts.resyncIntervalMs ? { resyncIntervalMs: this.opts.resyncIntervalMs } : {}),
        ...(this.opts.health ? { health: { host: '127.0.0.1', port: 0 } } : {}),
      });
      const dhcp = createDhcpAgent(dhcpStore, config, {
        logger: this.logger,
        runner: this.bed.runner,
      });
      await dhcp.start();
      this.dhcpAgents.set(name, dhcp);
    }
    const agent = createAgent(
      store,
      agentConfig({
        hostname: name,
        netns: h.netns,
        stateDir,
        ...(this.opts.resyncIntervalMs ? { resyncIntervalMs: this.opts.resyncIntervalMs } : {}),
        ...(this.opts.livenessTtlSeconds
          ? { livenessTtlSeconds: this.opts.livenessTtlSeconds }
          : {}),
        ...(this.opts.health ? { health: { host: '127.0.0.1', port: 0 } } : {}),
      }),
      { logger: this.logger, runner: this.bed.runner },
    );
    await agent.start();
    this.agents.set(name, agent);
    return agent;
  }

  /** Where a host's agent keeps BIRD's files (the same across restarts). */
  agentStateDir(name: string): string | undefined {
    return this.stateDirs.get(name);
  }

  async stopAgent(name: string): Promise<void> {
    const a = this.agents.get(name);
    this.agents.delete(name);
    await a?.close();
    const d = this.dhcpAgents.get(name);
    this.dhcpAgents.delete(name);
    await d?.close();
  }

  /**
   * A VM on `host`: a port created and bound through the driver (its addresses allocated by
   * IPAM), its namespace plugged into the tap (as Nova would), and its IPv4 configuration
   * obtained by DHCP from the host's dnsmasq (`dhcp: false`: configured statically). IPv6 is
   * configured statically (Calyx serves DHCPv4 only). Like Nova waiting for "vif plugged", it
   * waits for the agent to report the port up before the VM "boots" (asks for DHCP).
   */
  async addVm(
    hostName: string,
    opts: {
      name: string;
      subnet?: 'private' | 'public';
      ipv6?: boolean;
      dhcp?: boolean;
      client?: 'udhcpc' | 'dhclient';
      /** Default: the open group. */
      securityGroups?: string[];
      portSecurity?: boolean;
    },
  ): Promise<ClusterVm> {
    const host = this.hosts.get(hostName);
    if (!host) throw new Error(`no host ${hostName}`);
    const subnet = opts.subnet === 'public' ? PUBLIC_SUBNET : PRIVATE_SUBNET;
    const n = this.nextAddress++;
    const id = randomUUID();
    const mac = `fa:16:3e:${[n >> 16, (n >> 8) & 0xff, n & 0xff].map((b) => b.toString(16).padStart(2, '0')).join(':')}`;
    const port = await this.driver.createPort({
      id,
      host: hostName,
      networkId: NETWORK_ID,
      name: opts.name,
      workloadId: opts.name,
      mac,
      fixedIps: [{ subnetId: subnet.id }, ...(opts.ipv6 ? [{ subnetId: V6_SUBNET.id }] : [])],
      securityGroupIds: opts.securityGroups ?? [OPEN_GROUP],
      ...(opts.portSecurity === false ? { portSecurityEnabled: false } : {}),
    });
    const ipv4 = port.fixedIps.find((f) => f.subnetId === subnet.id)!.ipAddress;
    const ipv6 = port.fixedIps.find((f) => f.subnetId === V6_SUBNET.id)?.ipAddress;
    const useDhcp = (opts.dhcp ?? true) && (this.opts.dhcp ?? true);
    const vm = await this.bed.addVm(host, {
      name: opts.name,
      tapName: port.interfaceName,
      mac,
      ...(useDhcp
        ? {}
        : {
            ipv4: {
              address: ipv4,
              prefixLength: Number(subnet.cidr.split('/')[1]),
              gateway: subnet.gateway,
            },
          }),
      ...(ipv6 ? { ipv6: { address: ipv6, gateway: V6_SUBNET.gateway } } : {}),
    });
    if (this.agents.has(hostName))
      await this.driver.waitForPortStatus(port.id, 'up', { timeoutMs: 15_000 });
    let lease: DhcpLease | undefined;
    if (useDhcp) {
      this.dhcpClients ??= new DhcpClients(this.bed.runner, await this.bed.tempDir('dhcp-clients'));
      lease = await this.dhcpClients.obtain(vm, opts.client ?? 'udhcpc', 15);
      if (lease.ip !== ipv4)
        throw new Error(`${opts.name} got ${lease.ip} by DHCP, its port has ${ipv4}`);
    }
    return { port, vm, ipv4, ipv6, ...(lease ? { lease } : {}) };
  }

  /** Resolves once every BGP session of every agent (and of the edge router) is Established. */
  async waitForBgp(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const controllers = [
      ...[...this.agents.values()].map((a) => a.bird),
      ...(this.edge ? [this.edge.bird] : []),
    ];
    for (;;) {
      const all = await Promise.all(controllers.map((c) => c.protocols()));
      const down = all.flat().filter((p) => p.proto === 'BGP' && !p.established);
      if (down.length === 0) return;
      if (Date.now() > deadline)
        throw new Error(`BGP sessions not established: ${down.map((p) => p.name).join(', ')}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Routes a namespace learned over BGP (`proto bird`). */
  async bgpRoutes(netns: string, family: 4 | 6 = 4): Promise<string[]> {
    return (await this.bed.routes(netns, family))
      .filter((r) => r.protocol === 'bird')
      .map((r) => r.dst);
  }

  async close(): Promise<void> {
    for (const a of this.agents.values()) await a.close().catch(() => undefined);
    for (const d of this.dhcpAgents.values()) await d.close().catch(() => undefined);
    this.agents.clear();
    this.dhcpAgents.clear();
    await this.bed.dispose();
    for (const s of this.stores.reverse()) await s.close().catch(() => undefined);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

import { randomUUID } from 'node:crypto';
import { percentile, result, type BenchmarkResult, type BenchmarkSuite } from '@calyx/bench';
import { Cluster, NETWORK_ID, OPEN_GROUP, PRIVATE_SUBNET } from './cluster.js';

const mac = (n: number) =>
  `fa:16:3e:42:${((n >> 8) & 0xff).toString(16).padStart(2, '0')}:${(n & 0xff).toString(16).padStart(2, '0')}`;

export const suite: BenchmarkSuite = {
  id: 'cross-host',
  title: 'driver call (create + bind port) → first ping reply from a VM on another host',
  needsRoot: true,
  async run(ctx) {
    const n = ctx.quick ? 5 : 50;
    const cluster = await Cluster.create({
      computeHosts: 2,
      routeReflector: false,
      edgeRouter: false,
      dhcp: false,
    });
    try {
      await cluster.waitForBgp();
      // The prober sits in another subnet, so it reaches the new VMs through its gateway. From
      // the same subnet it would ARP for them directly, get no answer until the route exists,
      // and retry only after its ARP retransmit timer (1 s): that measures the VM's ARP timer.
      const prober = await cluster.addVm('compute-1', { name: 'prober', subnet: 'public' });
      await cluster.addVm('compute-2', { name: 'anchor' });
      const c2 = cluster.hosts.get('compute-2')!;
      // Until the /32 arrives, the prober's host drops probes silently (no ICMP unreachable).
      await cluster.bed.exec(cluster.hosts.get('compute-1')!.netns, [
        'ip',
        'route',
        'add',
        'blackhole',
        '10.65.0.0/16',
      ]);
      const calyx: number[] = [];
      const raw: number[] = [];
      for (let i = 0; i < n; i++) {
        // Calyx: the VM is plugged (Nova creates the tap), then the orchestrator creates and
        // binds its port in one driver call; the clock runs until the first reply crosses hosts.
        const ip = `10.65.0.${20 + i}`;
        const id = randomUUID();
        await cluster.bed.addVm(c2, {
          name: `calyx-${i}`,
          tapName: `tap${id.slice(0, 11)}`,
          mac: mac(i),
          ipv4: { address: ip, prefixLength: 24, gateway: PRIVATE_SUBNET.gateway },
        });
        const t0 = performance.now();
        const reply = cluster.bed.firstReply(prober.vm, ip, { attemptMs: 5 });
        await cluster.driver.createPort({
          id,
          host: 'compute-2',
          networkId: NETWORK_ID,
          mac: mac(i),
          fixedIps: [{ subnetId: PRIVATE_SUBNET.id, ipAddress: ip }],
          securityGroupIds: [OPEN_GROUP],
        });
        calyx.push((await reply) - t0);

        // The floor: the same host state written with the raw tools on compute-2 (tap sysctls,
        // host route with our protocol, static neighbour); BIRD carries it the same way.
        const rawIp = `10.65.0.${120 + i}`;
        const tap = `raw${String(i).padStart(4, '0')}`;
        await cluster.bed.addVm(c2, {
          name: `raw-${i}`,
          tapName: tap,
          mac: mac(1000 + i),
          ipv4: { address: rawIp, prefixLength: 24, gateway: PRIVATE_SUBNET.gateway },
        });
        const t1 = performance.now();
        const rawReply = cluster.bed.firstReply(prober.vm, rawIp, { attemptMs: 5 });
        await cluster.bed.exec(c2.netns, ['sysctl', '-q', '-p', '-'], {
          input:
            [
              `net/ipv4/conf/${tap}/forwarding = 1`,
              `net/ipv4/conf/${tap}/proxy_arp = 1`,
              `net/ipv4/neigh/${tap}/proxy_delay = 0`,
            ].join('\n') + '\n',
        });
        await cluster.bed.exec(c2.netns, ['ip', '-batch', '-'], {
          input: `route replace ${rawIp}/32 dev ${tap} scope link proto 80\nneigh replace ${rawIp} lladdr ${mac(1000 + i)} dev ${tap} nud permanent\n`,
        });
        raw.push((await rawReply) - t1);
        if ((i + 1) % 10 === 0)
          ctx.log(
            `${i + 1}/${n} ports: calyx p50 ${percentile(calyx, 50).toFixed(0)} ms, raw p50 ${percentile(raw, 50).toFixed(0)} ms`,
          );
      }
      const common = {
        unit: 'ms',
        lowerIsBetter: true,
        target: null,
        details: {
          ports: n,
          probe: 'one-shot pings, 5 ms each, back to back',
          calyxMs: calyx.map(Math.round),
          rawMs: raw.map(Math.round),
        },
      } as const;
      const out: BenchmarkResult[] = [
        result({
          ...common,
          id: 'cross-host.p50',
          description: `Median time from the driver call creating and binding a port on compute-2 to the first ping reply from a VM on compute-1 (in another subnet), over ${n} ports: datastore → agent → security-group rules (iptables, ipsets) → routes → BIRD → BGP → peer kernel. Baseline: the same routing state written on compute-2 with sysctl + ip -batch directly (no filter rules: the raw VM's interface is not a tap). Probes: back-to-back one-shot pings of 5 ms.`,
          value: percentile(calyx, 50),
          baseline: { name: 'raw sysctl + ip -batch', value: percentile(raw, 50) },
        }),
        result({
          ...common,
          id: 'cross-host.p99',
          description: `99th percentile of the same ${n} measurements. Issue target: p99 ≤ 1 s.`,
          value: percentile(calyx, 99),
          baseline: { name: 'raw sysctl + ip -batch', value: percentile(raw, 99) },
          absoluteTarget: { op: '<=', value: 1000 },
        }),
      ];
      return out;
    } finally {
      await cluster.close();
    }
  },
};

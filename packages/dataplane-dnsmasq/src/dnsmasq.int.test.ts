import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeIntegration, eventually } from '@calyx/core/testing';
import { DhcpClients, Testbed, type TestHost, type TestVm } from '@calyx/testbed';
import { DnsmasqProgrammer, type DnsmasqInstance, type DnsmasqSubnet } from './index.js';

const subnetA: DnsmasqSubnet = {
  tag: 'sub-a',
  network: '10.65.0.0',
  prefixLength: 24,
  gateway: '10.65.0.1',
  dnsServers: ['10.65.0.53', '10.65.0.54'],
  mtu: 1450,
  classlessRoutes: [
    { destination: '10.99.0.0/16', nexthop: '10.65.0.254' },
    { destination: '0.0.0.0/0', nexthop: '10.65.0.1' },
  ],
};
const subnetB: DnsmasqSubnet = {
  tag: 'sub-b',
  network: '10.66.0.0',
  prefixLength: 24,
  gateway: '10.66.0.1',
  dnsServers: [],
  mtu: 1500,
  classlessRoutes: [],
};
const mac = (n: number) => `fa:16:3e:00:01:${n.toString(16).padStart(2, '0')}`;
const host = (n: number, net = '10.65.0') => ({
  mac: mac(n),
  ip: `${net}.${n}`,
  hostname: `vm-${n}`,
});

describeIntegration(
  'dnsmasq served to real DHCP clients',
  { root: true, commands: ['dnsmasq', 'busybox', 'dhclient', 'ip'] },
  () => {
    let bed: Testbed;
    let h: TestHost;
    let clients: DhcpClients;
    let dnsmasq: DnsmasqProgrammer;
    let stateDir: string;
    const vms = new Map<number, TestVm>();

    const plug = async (n: number, ip = `10.65.0.${n}`) => {
      const vm = await bed.addVm(h, {
        name: `vm-${n}`,
        tapName: `tap${String(n).padStart(11, '0')}`,
        mac: mac(n),
      });
      vms.set(n, vm);
      // What the routes agent does for a VM: the reply to a unicast renew must find its way back.
      await bed.exec(h.netns, ['ip', 'route', 'replace', `${ip}/32`, 'dev', vm.tapName]);
      return vm;
    };
    const instance = (
      hosts: number[],
      extraSubnets: DnsmasqSubnet[] = [],
      extraHosts: ReturnType<typeof host>[] = [],
    ): DnsmasqInstance => ({
      name: 'calyx',
      interfaceName: 'ns-calyx',
      subnets: [subnetA, ...extraSubnets],
      hosts: [...hosts.map((n) => host(n)), ...extraHosts],
    });

    beforeAll(async () => {
      bed = await Testbed.create();
      h = await bed.addHost('compute-1');
      clients = new DhcpClients(bed.runner, await bed.tempDir('dhcp'));
      stateDir = await bed.tempDir('dnsmasq');
      dnsmasq = new DnsmasqProgrammer({
        runner: bed.runner,
        netns: h.netns,
        stateDir,
        logDhcp: true,
        reloadDebounceMs: 20,
      });
      await bed.exec(h.netns, ['sysctl', '-q', '-w', 'net.ipv4.ip_forward=1']);
    });
    afterAll(async () => {
      await dnsmasq?.removeAll().catch(() => undefined);
      await bed?.dispose();
    });

    it('gives busybox udhcpc and ISC dhclient the right address, prefix, router, DNS servers, MTU and routes', async () => {
      const vm1 = await plug(11);
      const vm2 = await plug(12);
      await dnsmasq.apply([instance([11, 12])]);
      const a = await clients.obtain(vm1, 'udhcpc');
      expect(a).toMatchObject({
        ip: '10.65.0.11',
        prefixLength: 24,
        router: '10.65.0.1',
        dns: ['10.65.0.53', '10.65.0.54'],
        mtu: 1450,
        domain: 'calyxlocal',
      });
      expect(a.staticRoutes).toEqual(['10.99.0.0/16 via 10.65.0.254', '0.0.0.0/0 via 10.65.0.1']);
      const b = await clients.obtain(vm2, 'dhclient');
      expect(b).toMatchObject({
        ip: '10.65.0.12',
        prefixLength: 24,
        router: '10.65.0.1',
        dns: ['10.65.0.53', '10.65.0.54'],
        mtu: 1450,
        domain: 'calyxlocal',
      });
      expect(b.staticRoutes).toEqual(['10.99.0.0/16 via 10.65.0.254', '0.0.0.0/0 via 10.65.0.1']);
      // The client really configured it: its gateway (held by ns-calyx) answers.
      expect(await bed.ping(vm1, '10.65.0.1')).toBe(true);
      // The interface holds the gateway without a connected route.
      const routes = await bed.routes(h.netns);
      expect(routes.some((r) => r.dst === '10.65.0.0/24')).toBe(false);
    });

    it('adds and removes ports with reloads only, while another VM renews in a loop without a failure', async () => {
      const pid = dnsmasq.pids().get('calyx');
      const startsBefore = dnsmasq.starts;
      const keeper = await clients.keep(vms.get(11)!);
      const present = [11, 12];
      let renewals = 0;
      const failures: number[] = [];
      const churn = (async () => {
        for (let n = 20; n < 30; n++) {
          const vm = await plug(n);
          present.push(n);
          await dnsmasq.apply([instance(present)]);
          dnsmasq.flush();
          const lease = await clients.obtain(vm, n % 2 ? 'udhcpc' : 'dhclient');
          expect(lease.ip).toBe(`10.65.0.${n}`);
          if (n % 3 === 0) {
            present.splice(present.indexOf(n), 1);
            await dnsmasq.apply([instance(present)]);
          }
        }
      })();
      let churning = true;
      const stopChurning = () => (churning = false);
      churn.then(stopChurning, stopChurning);
      while (churning || renewals < 20) {
        if (await keeper.renew()) renewals++;
        else failures.push(renewals);
      }
      await churn;
      await keeper.stop();
      expect(failures).toEqual([]);
      expect(renewals).toBeGreaterThanOrEqual(20);
      expect(dnsmasq.pids().get('calyx')).toBe(pid);
      expect(dnsmasq.starts).toBe(startsBefore);
      expect(dnsmasq.reloads).toBeGreaterThan(0);
    });

    it('coalesces a burst of changes into one reload', async () => {
      const reloads = dnsmasq.reloads;
      for (let n = 40; n < 50; n++)
        await dnsmasq.apply([
          instance([11, 12, 20, ...Array.from({ length: n - 39 }, (_, i) => 40 + i)]),
        ]);
      await eventually(() => dnsmasq.reloads > reloads, { what: 'the debounced reload' });
      expect(dnsmasq.reloads - reloads).toBe(1);
    });

    it('serves two networks from one dnsmasq without NAKs or lost renewals', async () => {
      const vmB = await plug(101, '10.66.0.101');
      const pid = dnsmasq.pids().get('calyx');
      await dnsmasq.apply([
        instance([11, 12], [subnetB], [{ mac: mac(101), ip: '10.66.0.101', hostname: 'vm-101' }]),
      ]);
      expect(dnsmasq.pids().get('calyx')).not.toBe(pid); // a new subnet is on the command line: one restart
      expect((await clients.obtain(vmB, 'udhcpc')).ip).toBe('10.66.0.101');
      const a = await clients.keep(vms.get(11)!);
      const b = await clients.keep(vmB);
      const results: boolean[] = [];
      for (let i = 0; i < 8; i++) results.push(await a.renew(), await b.renew());
      await a.stop();
      await b.stop();
      expect(results.every(Boolean)).toBe(true);
    });

    it('restarts a dnsmasq that dies, and a restarted programmer adopts the running one', async () => {
      const pid = dnsmasq.pids().get('calyx')!;
      expect(dnsmasq.notRunning()).toEqual([]);
      process.kill(pid, 'SIGKILL');
      // What readiness reports until the watchdog has restarted it.
      await eventually(() => dnsmasq.notRunning().includes('calyx'), { what: 'death noticed' });
      const ac = new AbortController();
      const watching = dnsmasq.watch(ac.signal, 100);
      await eventually(() => (dnsmasq.pids().get('calyx') ?? pid) !== pid, {
        what: 'dnsmasq restarted',
      });
      expect(dnsmasq.notRunning()).toEqual([]);
      ac.abort();
      await watching;
      expect((await clients.obtain(vms.get(12)!, 'udhcpc')).ip).toBe('10.65.0.12');
      const current = dnsmasq.pids().get('calyx');
      const again = new DnsmasqProgrammer({
        runner: bed.runner,
        netns: h.netns,
        stateDir,
        logDhcp: true,
      });
      const desired = instance(
        [11, 12],
        [subnetB],
        [{ mac: mac(101), ip: '10.66.0.101', hostname: 'vm-101' }],
      );
      await dnsmasq.apply([desired]);
      const report = await again.apply([desired]);
      expect(report.changes).toBe(0);
      expect(again.pids().get('calyx')).toBe(current);
    });
  },
);

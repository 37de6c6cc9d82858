import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeIntegration, eventually } from '@calyx/core/testing';
import type { SecurityGroupInput } from '@calyx/model';
import type { TestHost, TrafficProbe } from '@calyx/testbed';
import { Cluster, OPEN_GROUP, type ClusterVm } from './index.js';

const prereqs = {
  root: true,
  commands: ['ip', 'bird', 'birdc', 'ping', 'sysctl', 'iptables-restore', 'ipset', 'dnsmasq'],
};

const TCP = [80, 81, 5432, 5433, 8005, 8011];
const UDP = [5000, 7000];

// web: reachable on 80 (both families) and 8000-8010 from anyone, 5432 and ping only from the
// client group, UDP 5000 only from the public subnet; it may itself only talk to the db group.
const WEB: SecurityGroupInput = {
  id: 'sg-web',
  name: 'web',
  rules: [
    { direction: 'ingress', protocol: 'tcp', portRangeMin: 80 },
    { direction: 'ingress', ethertype: 'IPv6', protocol: 'tcp', portRangeMin: 80 },
    { direction: 'ingress', protocol: 'tcp', portRangeMin: 8000, portRangeMax: 8010 },
    { direction: 'ingress', protocol: 'tcp', portRangeMin: 5432, remoteGroupId: 'sg-client' },
    {
      direction: 'ingress',
      ethertype: 'IPv6',
      protocol: 'tcp',
      portRangeMin: 5432,
      remoteGroupId: 'sg-client',
    },
    { direction: 'ingress', protocol: 'icmp', icmpType: 8, remoteGroupId: 'sg-client' },
    { direction: 'ingress', ethertype: 'IPv6', protocol: 'icmp', icmpType: 128 },
    { direction: 'ingress', protocol: 'udp', portRangeMin: 5000, remoteIpPrefix: '203.0.113.0/24' },
    { direction: 'egress', protocol: 'tcp', portRangeMin: 5432, remoteGroupId: 'sg-db' },
  ],
};
const CLIENT: SecurityGroupInput = {
  id: 'sg-client',
  name: 'client',
  rules: [
    { direction: 'egress', ethertype: 'IPv4' },
    { direction: 'egress', ethertype: 'IPv6' },
  ],
};
const DB: SecurityGroupInput = {
  id: 'sg-db',
  name: 'db',
  rules: [
    { direction: 'ingress', protocol: 'tcp', portRangeMin: 5432, remoteGroupId: 'sg-web' },
    { direction: 'egress', ethertype: 'IPv4' },
  ],
};

/** `iptables-save -c` (or ip6tables) of a host as rule → packet count, our chains and hooks only. */
async function counters(
  cluster: Cluster,
  host: TestHost,
  family: 4 | 6,
): Promise<Map<string, number>> {
  const out = await cluster.bed.exec(host.netns, [
    family === 4 ? 'iptables-save' : 'ip6tables-save',
    '-c',
  ]);
  const map = new Map<string, number>();
  let table = '';
  for (const line of out.stdout.split('\n')) {
    if (line.startsWith('*')) table = line.slice(1);
    const m = /^\[(\d+):\d+\] (-A \S+ .*)$/.exec(line);
    if (m && m[2]!.includes('cx:')) map.set(`${table} ${m[2]}`, Number(m[1]));
  }
  return map;
}

describeIntegration(
  'security groups enforced by iptables and ipsets (real traffic)',
  prereqs,
  () => {
    let cluster: Cluster;
    let web1: ClusterVm;
    let cli1: ClusterVm;
    let cli2: ClusterVm;
    let pub2: ClusterVm;
    let db2: ClusterVm;
    let stranger2: ClusterVm;
    let nosec1: ClusterVm;
    const probes = new Map<string, TrafficProbe>();
    const probe = (vm: ClusterVm) => probes.get(vm.vm.name)!;
    const c1 = () => cluster.hosts.get('compute-1')!;

    beforeAll(async () => {
      cluster = await Cluster.create({
        mesh: true,
        routeReflector: false,
        edgeRouter: false,
        resyncIntervalMs: 1000,
      });
      // web and db refer to each other: db is created empty and filled in once web exists.
      await cluster.driver.createSecurityGroup(CLIENT);
      await cluster.driver.createSecurityGroup({ ...DB, rules: [] });
      await cluster.driver.createSecurityGroup(WEB);
      await cluster.driver.updateSecurityGroup(DB);
      web1 = await cluster.addVm('compute-1', {
        name: 'web1',
        ipv6: true,
        securityGroups: ['sg-web'],
      });
      cli1 = await cluster.addVm('compute-1', {
        name: 'cli1',
        ipv6: true,
        securityGroups: ['sg-client'],
      });
      nosec1 = await cluster.addVm('compute-1', {
        name: 'nosec1',
        securityGroups: [],
        portSecurity: false,
      });
      cli2 = await cluster.addVm('compute-2', {
        name: 'cli2',
        ipv6: true,
        securityGroups: ['sg-client'],
      });
      pub2 = await cluster.addVm('compute-2', {
        name: 'pub2',
        subnet: 'public',
        securityGroups: ['sg-client'],
      });
      db2 = await cluster.addVm('compute-2', { name: 'db2', securityGroups: ['sg-db'] });
      stranger2 = await cluster.addVm('compute-2', { name: 'stranger2', ipv6: true });
      for (const vm of [web1, cli1, nosec1, cli2, pub2, db2, stranger2])
        probes.set(vm.vm.name, await cluster.bed.startTrafficProbe(vm.vm, { tcp: TCP, udp: UDP }));
      // Routes (by BGP) are in place once the open VM answers across hosts.
      await cluster.bed.waitForPing(cli1.vm, stranger2.ipv4);
      await cluster.bed.waitForPing(cli1.vm, stranger2.ipv6!);
    }, 120_000);
    afterAll(async () => {
      for (const p of probes.values()) await p.stop().catch(() => undefined);
      await cluster?.close();
    });

    type Case = [from: ClusterVm, to: ClusterVm, what: string, expected: 'open' | 'blocked'];
    /** Runs every case at once; compares the whole table, so a failure shows every wrong cell. */
    async function matrix(cases: Case[]): Promise<void> {
      const outcomes = await Promise.all(
        cases.map(async ([from, to, what]) => {
          const [proto, rest = ''] = what.split(' ');
          const v6 = rest.endsWith('/6');
          const target = v6 ? to.ipv6! : to.ipv4;
          if (proto === 'ping')
            return (await cluster.bed.ping(from.vm, target, 1)) ? 'open' : 'blocked';
          const r = await probe(from).connect(
            proto as 'tcp' | 'udp',
            target,
            Number(rest.replace('/6', '')),
            {
              timeoutMs: 1000,
            },
          );
          // Dropped is a timeout; a refusal would mean something rejected it instead.
          return r.ok ? 'open' : r.error === 'timeout' ? 'blocked' : `error ${r.error}`;
        }),
      );
      const table = (results: string[]) =>
        cases.map(
          ([from, to, what], i) => `${from.vm.name} → ${to.vm.name} ${what}: ${results[i]}`,
        );
      expect(table(outcomes)).toEqual(table(cases.map((c) => c[3])));
    }

    describe('a matrix of rules, both directions, IPv4 and IPv6', () => {
      it('allows exactly what the groups say (ports, ranges, ICMP, remote CIDR, remote group)', async () => {
        await matrix([
          // Ports and ranges, same host and across hosts.
          [cli1, web1, 'tcp 80', 'open'],
          [cli2, web1, 'tcp 80', 'open'],
          [cli2, web1, 'tcp 80/6', 'open'],
          [cli2, web1, 'tcp 81', 'blocked'],
          [cli2, web1, 'tcp 81/6', 'blocked'],
          [cli2, web1, 'tcp 8005', 'open'],
          [cli2, web1, 'tcp 8011', 'blocked'],
          [cli2, web1, 'udp 7000', 'blocked'],
          // Remote CIDR: the public subnet only.
          [pub2, web1, 'udp 5000', 'open'],
          [cli2, web1, 'udp 5000', 'blocked'],
          // Remote group with members on the other host; not for a stranger.
          [cli2, web1, 'tcp 5432', 'open'],
          [cli2, web1, 'tcp 5432/6', 'open'],
          [stranger2, web1, 'tcp 5432', 'blocked'],
          [stranger2, web1, 'tcp 5432/6', 'blocked'],
          // ICMP: echo from the client group (IPv4), from anyone (IPv6).
          [cli2, web1, 'ping', 'open'],
          [stranger2, web1, 'ping', 'blocked'],
          [stranger2, web1, 'ping /6', 'open'],
          // Egress: web may only reach the db group on 5432; db admits only web.
          [web1, db2, 'tcp 5432', 'open'],
          [web1, db2, 'tcp 5433', 'blocked'],
          [web1, stranger2, 'tcp 80', 'blocked'],
          [web1, stranger2, 'tcp 80/6', 'blocked'],
          [stranger2, db2, 'tcp 5432', 'blocked'],
          // The client group admits nothing in; no ingress rule means no ingress.
          [stranger2, cli1, 'tcp 80', 'blocked'],
          [web1, cli1, 'tcp 80', 'blocked'],
          // A port without security lets everything through.
          [stranger2, nosec1, 'tcp 81', 'open'],
        ]);
      });

      it('lets VMs with restrictive groups use DHCP and DNS on their host, and nothing else there', async () => {
        expect(web1.lease?.ip).toBe(web1.ipv4);
        const gw = web1.lease!.router;
        expect(await cluster.bed.ping(web1.vm, gw)).toBe(true);
        const ssh = await probe(web1).connect('tcp', gw, 22, { timeoutMs: 500 });
        expect(ssh).toMatchObject({ ok: false, error: 'timeout' });
      });
    });

    it('drops what a VM sends with another source address or MAC', async () => {
      const rawDrops = async () =>
        [...(await counters(cluster, c1(), 4))]
          .filter(([rule]) => rule.startsWith('raw ') && rule.includes('-j DROP'))
          .reduce((n, [, c]) => n + c, 0);
      const spoof = async (from: ClusterVm, address: string) => {
        await cluster.bed.exec(from.vm.netns, [
          'ip',
          'addr',
          'add',
          `${address}/32`,
          'dev',
          'eth0',
        ]);
        try {
          // The spoofed datagram first, then a genuine one on the same path: once the genuine
          // one has been echoed, the spoofed one would have arrived before it.
          void probe(from).connect('udp', stranger2.ipv4, 7000, {
            source: address,
            timeoutMs: 200,
          });
          expect((await probe(from).connect('udp', stranger2.ipv4, 7000)).ok).toBe(true);
          return await probe(stranger2).seen(7000);
        } finally {
          await cluster.bed.exec(from.vm.netns, [
            'ip',
            'addr',
            'del',
            `${address}/32`,
            'dev',
            'eth0',
          ]);
        }
      };
      await probe(stranger2).seen(7000);
      const before = await rawDrops();
      expect(await spoof(cli1, '10.65.0.250')).toEqual([cli1.ipv4]);
      expect(await rawDrops()).toBeGreaterThan(before);
      // The same from a port without security passes: the check above is what stopped it.
      expect(await spoof(nosec1, '10.65.0.251')).toEqual(['10.65.0.251', nosec1.ipv4]);

      const eth0 = ['ip', 'link', 'set', 'dev', 'eth0', 'address'];
      await cluster.bed.exec(cli1.vm.netns, [...eth0, 'fa:16:3e:66:66:66']);
      try {
        const r = await probe(cli1).connect('udp', stranger2.ipv4, 7000, { timeoutMs: 500 });
        expect(r).toMatchObject({ ok: false, error: 'timeout' });
        expect(await probe(stranger2).seen(7000)).toEqual([]);
      } finally {
        await cluster.bed.exec(cli1.vm.netns, [...eth0, cli1.port.mac]);
      }
      expect((await probe(cli1).connect('udp', stranger2.ipv4, 7000)).ok).toBe(true);
    });

    it('updates other hosts’ ipsets, not their chains, when a remote group gains or loses a member', async () => {
      const rules = async () => [...(await counters(cluster, c1(), 4)).keys()].sort();
      const before = await rules();
      const joined = await cluster.addVm('compute-2', {
        name: 'cli3',
        securityGroups: ['sg-client'],
      });
      const p3 = await cluster.bed.startTrafficProbe(joined.vm, { tcp: TCP });
      probes.set('cli3', p3);
      await eventually(
        async () => (await p3.connect('tcp', web1.ipv4, 5432, { timeoutMs: 300 })).ok,
        {
          what: 'the new client member reaching web1:5432',
        },
      );
      expect(await rules()).toEqual(before);
      const setName = (await cluster.bed.exec(c1().netns, ['ipset', 'list', '-n'])).stdout
        .split('\n')
        .filter((n) => /^calyx-4-[0-9a-f]{10}$/.test(n));
      const members = async () => {
        const out: string[] = [];
        for (const n of setName)
          out.push(
            ...(await cluster.bed.exec(c1().netns, ['ipset', 'list', n])).stdout.split('\n'),
          );
        return out;
      };
      expect(await members()).toContain(joined.ipv4);

      await cluster.driver.updatePort({ ...joined.port, securityGroupIds: [OPEN_GROUP] });
      await eventually(async () => !(await members()).includes(joined.ipv4), {
        what: 'compute-1 dropping the former member from its ipset',
      });
      const r = await p3.connect('tcp', web1.ipv4, 5432, { timeoutMs: 1000 });
      expect(r).toMatchObject({ ok: false, error: 'timeout' });
      expect(await rules()).toEqual(before);
    });

    it('opens a blocked port when a rule is added, and closes it again when removed', async () => {
      await matrix([[cli2, web1, 'tcp 81', 'blocked']]);
      await cluster.driver.updateSecurityGroup({
        ...WEB,
        rules: [...(WEB.rules ?? []), { direction: 'ingress', protocol: 'tcp', portRangeMin: 81 }],
      });
      await eventually(
        async () => (await probe(cli2).connect('tcp', web1.ipv4, 81, { timeoutMs: 300 })).ok,
        {
          what: 'port 81 opening',
        },
      );
      await cluster.driver.updateSecurityGroup(WEB);
      await eventually(
        async () =>
          (await probe(cli2).connect('tcp', web1.ipv4, 81, { timeoutMs: 300 })).error === 'timeout',
        { what: 'port 81 closing' },
      );
    });

    it('drops everything of an admin-down port, and of a tap no port owns', async () => {
      await cluster.driver.updatePort({ ...web1.port, adminStateUp: false });
      await eventually(
        async () =>
          (await probe(cli1).connect('tcp', web1.ipv4, 80, { timeoutMs: 300 })).error === 'timeout',
        { what: 'web1 going dark' },
      );
      await cluster.driver.updatePort({ ...web1.port, adminStateUp: true });
      await eventually(
        async () => (await probe(cli1).connect('tcp', web1.ipv4, 80, { timeoutMs: 300 })).ok,
        {
          what: 'web1 back',
        },
      );

      // A VM plugged into a tap Calyx knows nothing about, using a free address of the subnet.
      const rogue = await cluster.bed.addVm(c1(), {
        name: 'rogue',
        tapName: 'tapdeadbeef-00',
        mac: 'fa:16:3e:de:ad:00',
        ipv4: { address: '10.65.0.240', prefixLength: 24, gateway: '10.65.0.1' },
      });
      const rogueProbe = await cluster.bed.startTrafficProbe(rogue, {});
      probes.set('rogue', rogueProbe);
      await probe(stranger2).seen(7000);
      const r = await rogueProbe.connect('udp', stranger2.ipv4, 7000, { timeoutMs: 500 });
      expect(r.ok).toBe(false);
      // Genuine traffic on the same path arrives; the rogue datagram never did.
      expect((await probe(cli1).connect('udp', stranger2.ipv4, 7000)).ok).toBe(true);
      expect(await probe(stranger2).seen(7000)).toEqual([cli1.ipv4]);
      expect(await cluster.bed.ping(rogue, '10.65.0.1', 0.5)).toBe(false);
    });

    it('masquerades traffic leaving the pools once the pool asks for NAT outgoing', async () => {
      const c2 = cluster.hosts.get('compute-2')!;
      const outside = await cluster.bed.startTrafficProbe(c2, { tcp: [9000] });
      probes.set('outside', outside);
      const seenAs = async () => (await probe(cli1).connect('tcp', c2.ipv4, 9000)).seenAs;
      expect(await seenAs()).toBe(cli1.ipv4);
      await cluster.driver.putIpPool({ name: 'private', cidr: '10.65.0.0/16', natOutgoing: true });
      await eventually(async () => (await seenAs()) === c1().ipv4, {
        what: 'the source masqueraded',
      });
      // Inside the pools nothing is translated.
      expect((await probe(cli1).connect('tcp', stranger2.ipv4, 80)).seenAs).toBe(cli1.ipv4);
      await cluster.driver.putIpPool({ name: 'private', cidr: '10.65.0.0/16' });
      await eventually(async () => (await seenAs()) === cli1.ipv4, { what: 'NAT switched off' });
    });

    it('repairs a rule deleted by hand on the next resync', async () => {
      const chain = `calyx-tw-${web1.port.interfaceName}`;
      const list = async () =>
        (await cluster.bed.exec(c1().netns, ['iptables', '-S', chain])).stdout.trim().split('\n');
      const complete = await list();
      // (exec throws unless the rule was deleted; no check in between: the 1 s resync of this
      // cluster may already have put it back.)
      await cluster.bed.exec(c1().netns, ['iptables', '-D', chain, '2']);
      await eventually(async () => (await list()).length === complete.length, {
        what: 'the deleted rule coming back',
      });
      expect(await list()).toEqual(complete);
    });

    it('restarts the agent without rewriting anything: rule counters keep counting', async () => {
      for (let i = 0; i < 3; i++) expect(await cluster.bed.ping(cli2.vm, web1.ipv4)).toBe(true);
      const before = new Map([
        ...(await counters(cluster, c1(), 4)),
        ...(await counters(cluster, c1(), 6)),
      ]);
      const wlRule = [...before].find(
        ([rule, n]) => rule.includes(`calyx-tw-${web1.port.interfaceName}`) && n > 0,
      );
      expect(wlRule).toBeDefined();
      await cluster.stopAgent('compute-1');
      const restarted = await cluster.startAgent('compute-1');
      await restarted.idle();
      const after = new Map([
        ...(await counters(cluster, c1(), 4)),
        ...(await counters(cluster, c1(), 6)),
      ]);
      // The same rules (by their hash comments); a rewritten rule would have restarted from 0.
      expect([...after.keys()].sort()).toEqual([...before.keys()].sort());
      for (const [rule, n] of before) expect(after.get(rule)).toBeGreaterThanOrEqual(n);
      expect(after.get(wlRule![0])).toBeGreaterThanOrEqual(wlRule![1]);
    });
  },
);

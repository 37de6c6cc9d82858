import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeIntegration } from '@calyx/core/testing';
import { Testbed, type TestHost, type TestVm } from '@calyx/testbed';
import { RoutesProgrammer, type RoutesDesired } from './index.js';

describeIntegration(
  'RoutesProgrammer on a real kernel',
  { root: true, commands: ['ip', 'ping', 'sysctl', 'grep'] },
  () => {
    let bed: Testbed;
    let host: TestHost;
    let vm1: TestVm;
    let vm2: TestVm;
    const desired = (extra: RoutesDesired['endpoints'] = []): RoutesDesired => ({
      endpoints: [
        {
          interfaceName: 'tapaaaaaaaa-01',
          mac: 'fa:16:3e:00:00:01',
          addresses: ['10.65.0.10', '2001:db8:65::10'],
        },
        {
          interfaceName: 'tapbbbbbbbb-02',
          mac: 'fa:16:3e:00:00:02',
          addresses: ['10.65.0.11', '2001:db8:65::11'],
        },
        ...extra,
      ],
      gateways: ['10.65.0.1', '2001:db8:65::1'],
    });

    beforeAll(async () => {
      bed = await Testbed.create();
      host = await bed.addHost('compute-1');
      vm1 = await bed.addVm(host, {
        name: 'vm1',
        tapName: 'tapaaaaaaaa-01',
        mac: 'fa:16:3e:00:00:01',
        ipv4: { address: '10.65.0.10', prefixLength: 24, gateway: '10.65.0.1' },
        ipv6: { address: '2001:db8:65::10', gateway: '2001:db8:65::1' },
      });
      vm2 = await bed.addVm(host, {
        name: 'vm2',
        tapName: 'tapbbbbbbbb-02',
        mac: 'fa:16:3e:00:00:02',
        ipv4: { address: '10.65.0.11', prefixLength: 24, gateway: '10.65.0.1' },
        ipv6: { address: '2001:db8:65::11', gateway: '2001:db8:65::1' },
      });
    });
    afterAll(async () => {
      await bed?.dispose();
    });

    it('routes between VMs on one host and answers for their gateway, IPv4 and IPv6', async () => {
      const p = new RoutesProgrammer({ runner: bed.runner, netns: host.netns });
      const report = await p.apply(desired());
      expect(report.details).toMatchObject({ routesAdded: 4, interfacesConfigured: 2, failed: 0 });
      const routes = await bed.routes(host.netns);
      expect(
        routes
          .filter((r) => r.protocol === '80')
          .map((r) => `${r.dst} ${r.dev}`)
          .sort(),
      ).toEqual(['10.65.0.10 tapaaaaaaaa-01', '10.65.0.11 tapbbbbbbbb-02']);
      expect(await bed.ping(vm1, '10.65.0.1')).toBe(true);
      expect(await bed.ping(vm1, '10.65.0.11')).toBe(true);
      expect(await bed.ping(vm2, '2001:db8:65::1')).toBe(true);
      expect(await bed.ping(vm2, '2001:db8:65::10')).toBe(true);
      const sys = await bed.exec(host.netns, [
        'sysctl',
        '-n',
        'net.ipv4.conf.tapaaaaaaaa-01.proxy_arp',
        'net.ipv4.neigh.tapaaaaaaaa-01.proxy_delay',
        'net.ipv4.ip_forward',
      ]);
      expect(sys.stdout.split('\n').filter(Boolean)).toEqual(['1', '0', '1']);
      expect(p.status.get('tapaaaaaaaa-01')).toBe('programmed');
    });

    it('changes nothing when a new instance (a restarted agent) applies the same state', async () => {
      const restarted = new RoutesProgrammer({ runner: bed.runner, netns: host.netns });
      const report = await restarted.apply(desired());
      expect(report.changes).toBe(0);
    });

    it('leaves routes it does not own alone and removes its own when an endpoint goes', async () => {
      await bed.exec(host.netns, [
        'ip',
        'route',
        'add',
        '10.99.0.0/24',
        'dev',
        'fab0',
        'proto',
        'static',
      ]);
      await bed.exec(host.netns, [
        'ip',
        'route',
        'add',
        '10.65.0.200/32',
        'dev',
        'tapaaaaaaaa-01',
        'proto',
        'static',
      ]);
      const p = new RoutesProgrammer({ runner: bed.runner, netns: host.netns });
      await p.apply({ endpoints: [desired().endpoints[0]!], gateways: desired().gateways });
      const routes = (await bed.routes(host.netns)).map((r) =>
        `${r.dst} ${r.dev} ${r.protocol ?? ''}`.trim(),
      );
      expect(routes).toContain('10.99.0.0/24 fab0 static');
      expect(routes).toContain('10.65.0.200 tapaaaaaaaa-01 static');
      expect(routes).not.toContain('10.65.0.11 tapbbbbbbbb-02 80');
      expect(await bed.ping(vm1, '10.65.0.11')).toBe(false);
      await p.apply(desired());
      expect(await bed.ping(vm1, '10.65.0.11')).toBe(true);
      await bed.exec(host.netns, ['ip', 'route', 'del', '10.65.0.200/32', 'dev', 'tapaaaaaaaa-01']);
    });

    it('repairs a route deleted by hand once it re-reads the state', async () => {
      const p = new RoutesProgrammer({ runner: bed.runner, netns: host.netns });
      await p.apply(desired());
      await bed.exec(host.netns, ['ip', 'route', 'del', '10.65.0.11/32', 'dev', 'tapbbbbbbbb-02']);
      expect((await p.apply(desired())).changes).toBe(0); // trusts its cache between resyncs
      p.invalidate();
      const report = await p.apply(desired());
      expect(report.details).toMatchObject({ routesAdded: 1 });
      expect(await bed.ping(vm1, '10.65.0.11')).toBe(true);
    });

    it('programs a tap that appears later, as soon as the link monitor reports it', async () => {
      const p = new RoutesProgrammer({ runner: bed.runner, netns: host.netns });
      const late = {
        interfaceName: 'tapcccccccc-03',
        mac: 'fa:16:3e:00:00:03',
        addresses: ['10.65.0.12'],
      };
      const want = desired([late]);
      await p.apply(want);
      expect(p.status.get('tapcccccccc-03')).toBe('missing-interface');
      const ac = new AbortController();
      let applied: Promise<unknown> = Promise.resolve();
      let ready!: () => void;
      const listening = new Promise<void>((r) => (ready = r));
      const seen = new Promise<void>((resolve) => {
        void p.watchLinks(
          ac.signal,
          (name) => {
            if (name !== 'tapcccccccc-03') return;
            applied = p.apply(want).then(() => {
              if (p.status.get(name) === 'programmed') resolve();
            });
          },
          ready,
        );
      });
      try {
        await listening;
        const vm3 = await bed.addVm(host, {
          name: 'vm3',
          tapName: 'tapcccccccc-03',
          mac: 'fa:16:3e:00:00:03',
          ipv4: { address: '10.65.0.12', prefixLength: 24, gateway: '10.65.0.1' },
        });
        await seen;
        await applied;
        expect(await bed.ping(vm3, '10.65.0.10')).toBe(true);
      } finally {
        ac.abort();
      }
    });
  },
);

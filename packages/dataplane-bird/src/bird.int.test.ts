import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeIntegration, eventually } from '@calyx/core/testing';
import { Testbed, type TestHost } from '@calyx/testbed';
import {
  BirdConfigError,
  BirdController,
  birdProtocolNameOf,
  type BirdConfig,
  type BirdPeer,
} from './index.js';

const timers = { connectRetrySeconds: 1, holdSeconds: 9, gracefulRestartSeconds: 30 };

describeIntegration(
  'BIRD driven by BirdController',
  { root: true, commands: ['bird', 'birdc', 'ip'] },
  () => {
    let bed: Testbed;
    let h1: TestHost;
    let h2: TestHost;
    let edge: TestHost;
    const birds = new Map<string, BirdController>();

    const hostPeer = (to: TestHost, from: TestHost, extra: Partial<BirdPeer> = {}): BirdPeer => ({
      name: to.name,
      neighborAddress: to.ipv4,
      localAddress: from.ipv4,
      localAs: 64512,
      peerAs: 64512,
      direct: true,
      routeReflectorClient: false,
      gracefulRestart: true,
      family: 4,
      export: { kind: 'endpoints' },
      import: 'all',
      ...extra,
    });
    const edgePeer = (from: TestHost, password: string): BirdPeer => ({
      ...hostPeer(edge, from),
      name: 'edge',
      peerAs: 65000,
      password,
      export: { kind: 'prefixes', prefixes: ['203.0.113.0/24'] },
    });
    const hostConfig = (
      self: TestHost,
      other: TestHost,
      edgePassword = 'edge-secret',
    ): BirdConfig => ({
      routerId: self.ipv4,
      logLevel: 'info',
      endpointRouteProtocol: 80,
      installRoutes: true,
      timers,
      peers: [hostPeer(other, self), edgePeer(self, edgePassword)],
    });
    const edgeConfig: () => BirdConfig = () => ({
      routerId: edge.ipv4,
      logLevel: 'info',
      endpointRouteProtocol: null,
      installRoutes: true,
      timers,
      peers: [h1, h2].map((h) => ({
        ...hostPeer(h, edge),
        name: h.name,
        localAs: 65000,
        peerAs: 64512,
        password: 'edge-secret',
        export: { kind: 'none' as const },
      })),
    });

    async function controller(h: TestHost): Promise<BirdController> {
      const c = new BirdController({
        runner: bed.runner,
        netns: h.netns,
        stateDir: await bed.tempDir(`bird-${h.name}`),
      });
      birds.set(h.name, c);
      return c;
    }

    const learned = async (h: TestHost) =>
      (await bed.routes(h.netns))
        .filter((r) => r.protocol === 'bird')
        .map((r) => `${r.dst} via ${r.gateway}`);

    beforeAll(async () => {
      bed = await Testbed.create();
      h1 = await bed.addHost('compute-1');
      h2 = await bed.addHost('compute-2');
      edge = await bed.addHost('edge');
      await bed.exec(h1.netns, [
        'ip',
        'link',
        'add',
        'tapx',
        'type',
        'veth',
        'peer',
        'name',
        'tapy',
      ]);
      await bed.exec(h1.netns, ['ip', 'link', 'set', 'tapx', 'up']);
      await bed.exec(h1.netns, ['ip', 'link', 'set', 'tapy', 'up']);
      for (const [dst, proto] of [
        ['10.65.0.10/32', '80'],
        ['203.0.113.10/32', '80'],
        ['10.77.0.0/24', 'static'],
      ] as const) {
        await bed.exec(h1.netns, ['ip', 'route', 'add', dst, 'dev', 'tapx', 'proto', proto]);
      }
      await (await controller(h1)).apply(hostConfig(h1, h2));
      await (await controller(h2)).apply(hostConfig(h2, h1, 'wrong-secret'));
      await (await controller(edge)).apply(edgeConfig());
    });
    afterAll(async () => {
      await bed?.dispose();
    });

    it('carries endpoint routes (our route protocol only) to the other host over iBGP', async () => {
      await eventually(async () => (await learned(h2)).includes('10.65.0.10 via 172.31.0.1'), {
        what: 'h2 learning 10.65.0.10',
      });
      const routes = await learned(h2);
      expect(routes).toContain('203.0.113.10 via 172.31.0.1');
      expect(routes.some((r) => r.startsWith('10.77.0.0/24'))).toBe(false);
      const status = await birds.get('compute-2')!.protocols();
      expect(
        status.find((p) => p.name === birdProtocolNameOf({ name: 'compute-1', family: 4 }))
          ?.established,
      ).toBe(true);
    });

    it('tells the edge router only public-pool routes, and only over sessions whose MD5 password matches', async () => {
      await eventually(async () => (await learned(edge)).includes('203.0.113.10 via 172.31.0.1'), {
        what: 'edge learning the public route',
      });
      expect((await learned(edge)).some((r) => r.startsWith('10.65.0.10'))).toBe(false);
      const edgeStatus = await birds.get('edge')!.protocols();
      const byHost = (h: TestHost) =>
        edgeStatus.find((p) => p.name === birdProtocolNameOf({ name: h.name, family: 4 }));
      expect(byHost(h1)?.established).toBe(true);
      expect(byHost(h2)?.established).toBe(false);
    });

    it('reconfigures a running BIRD without restarting it, and skips identical configs', async () => {
      const c = birds.get('compute-2')!;
      const pid = await c.pid();
      expect(pid).toBeGreaterThan(0);
      expect((await c.apply(hostConfig(h2, h1, 'wrong-secret'))).changes).toBe(0);
      expect((await c.apply(hostConfig(h2, h1))).changes).toBe(1);
      expect(await c.pid()).toBe(pid);
      await eventually(
        async () =>
          (await birds.get('edge')!.protocols()).filter((p) => p.established).length === 2,
        { what: 'both edge sessions up' },
      );
      // A restarted controller (new agent) adopts the running BIRD and its config.
      const adopted = new BirdController({
        runner: bed.runner,
        netns: h2.netns,
        stateDir: c.configFile.replace(/\/bird\.conf$/, ''),
      });
      expect((await adopted.apply(hostConfig(h2, h1))).changes).toBe(0);
    });

    it('rejects a config BIRD cannot parse without touching the running one', async () => {
      const c = birds.get('compute-1')!;
      await expect(c.validate('protocol bgp { this is not bird }')).rejects.toThrow(
        BirdConfigError,
      );
      expect(await c.isRunning()).toBe(true);
      expect((await c.protocols()).some((p) => p.established)).toBe(true);
    });
  },
);

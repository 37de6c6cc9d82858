import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeIntegration, eventually } from '@calyx/core/testing';
import type { Datastore } from '@calyx/datastore';
import { EtcdDatastore } from '@calyx/datastore-etcd';
import { HostUnavailableError, ResourceNotFoundError } from '@calyx/driver';
import { parsePrometheusText, type PrometheusSample } from '@calyx/telemetry';
import { RedisDatastore } from '@calyx/datastore-redis';
import {
  freePort,
  startEtcd,
  startRedis,
  type StartedEtcd,
  type StartedRedis,
} from '@calyx/testbed';
import { Cluster, NETWORK_ID, OPEN_GROUP, PRIVATE_SUBNET } from './index.js';

const commands = ['ip', 'bird', 'birdc', 'ping', 'sysctl', 'grep', 'iptables-restore', 'ipset'];
const TTL_SECONDS = 3;
const AGENT_BIN = fileURLToPath(new URL('../../agent/dist/bin/calyx-agent.js', import.meta.url));

/** A health endpoint's answer; the body carries the reasons when it is not 200. */
async function check(addr: { port: number }, path: '/livez' | '/readyz') {
  const res = await fetch(`http://127.0.0.1:${addr.port}${path}`);
  return { status: res.status, body: await res.text() };
}

async function scrape(addr: { host: string; port: number }): Promise<PrometheusSample[]> {
  const res = await fetch(`http://${addr.host}:${addr.port}/metrics`);
  expect(res.status).toBe(200);
  return parsePrometheusText(await res.text());
}

function value(samples: PrometheusSample[], name: string, labels: Record<string, string> = {}) {
  return samples.find(
    (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  )?.value;
}

// What an orchestrator and an operator rely on: port status, agent liveness, health and metrics.
const serverOf = { memory: [], etcd: ['etcd', 'node'], redis: ['redis-server', 'node'] } as const;
for (const backend of ['memory', 'etcd', 'redis'] as const)
  describeIntegration(
    `operating Calyx over ${backend}: port status, liveness, health, metrics`,
    { root: true, commands: [...commands, ...serverOf[backend]] },
    () => {
      let cluster: Cluster;
      let etcd: StartedEtcd | undefined;
      let redis: StartedRedis | undefined;
      /** The datastore URL the agent program is given. */
      let url = '';
      let mac = 0x100;

      beforeAll(async () => {
        let openStore: (() => Promise<Datastore>) | undefined;
        if (backend === 'redis') {
          const started = (redis = await startRedis());
          url = `redis://127.0.0.1:${started.port}/?namespace=ops`;
          openStore = () =>
            RedisDatastore.open({
              redis: { host: '127.0.0.1', port: started.port },
              namespace: 'ops',
            });
        }
        if (backend === 'etcd') {
          const started = (etcd = await startEtcd());
          url = `etcd://${started.endpoint.replace(/^https?:\/\//, '')}/ops`;
          openStore = async () =>
            new EtcdDatastore({ endpoints: [started.endpoint], namespace: '/ops' });
        }
        cluster = await Cluster.create({
          computeHosts: 2,
          routeReflector: false,
          edgeRouter: false,
          livenessTtlSeconds: TTL_SECONDS,
          health: true,
          ...(openStore ? { openStore } : {}),
        });
      }, 120_000);
      afterAll(async () => {
        await cluster?.close();
        await etcd?.stop();
        await redis?.stop();
      });

      const newPort = (host: string) =>
        cluster.driver.createPort({
          id: randomUUID(),
          host,
          networkId: NETWORK_ID,
          mac: `fa:16:3e:00:${((mac >> 8) & 0xff).toString(16).padStart(2, '0')}:${(mac++ & 0xff).toString(16).padStart(2, '0')}`,
          fixedIps: [{ subnetId: PRIVATE_SUBNET.id }],
          securityGroupIds: [OPEN_GROUP],
        });

      it('reports a port up only once its VM answers, and down when its tap goes away', async () => {
        const { driver, bed } = cluster;
        const host = cluster.hosts.get('compute-1')!;
        const port = await newPort('compute-1');
        const ip = port.fixedIps[0]!.ipAddress;
        // Bound, but no tap yet: down, with the reason.
        const before = await driver.waitForPortStatus(port.id, 'down', { timeoutMs: 5_000 });
        expect(before.reason).toBe(`interface ${port.interfaceName} does not exist`);
        // Nova plugs the VM; the orchestrator waits for "up"…
        const up = driver.waitForPortStatus(port.id, 'up', { timeoutMs: 20_000 });
        up.catch(() => undefined); // awaited below; a step in between may fail first
        const vm = await bed.addVm(host, {
          name: `vm-${port.id.slice(0, 8)}`,
          tapName: port.interfaceName,
          mac: port.mac,
          ipv4: { address: ip, prefixLength: 24, gateway: PRIVATE_SUBNET.gateway },
        });
        expect((await up).status).toBe('up');
        // …and "up" means reachable: the first single ping from its host gets an answer.
        expect(await bed.ping(host, ip)).toBe(true);
        expect(await bed.ping(vm, PRIVATE_SUBNET.gateway)).toBe(true);
        // Deleted and created again under the same id (an orchestrator retrying): the "up"
        // left from the first port is stale, and only the report about the new one counts.
        await driver.deletePort(port.id);
        await driver.createPort({
          id: port.id,
          host: 'compute-1',
          networkId: NETWORK_ID,
          mac: port.mac,
          fixedIps: [{ subnetId: PRIVATE_SUBNET.id, ipAddress: ip }],
          securityGroupIds: [OPEN_GROUP],
        });
        const again = await driver.waitForPortStatus(port.id, 'up', { timeoutMs: 10_000 });
        expect(again).toMatchObject({ stale: false, reportedRevision: again.portRevision });
        expect(again.portRevision).toBeGreaterThan((await up).portRevision);
        expect(await bed.ping(host, ip)).toBe(true);
        // The VM goes away with its tap: down again.
        await bed.removeVm(vm);
        // (The kernel may first take the tap down, then delete it: "is down", then "does not exist".)
        await driver.waitForPortStatus(port.id, 'down', { timeoutMs: 5_000 });
        await eventually(
          async () =>
            (await driver.getPortStatus(port.id)).reason ===
            `interface ${port.interfaceName} does not exist`,
          { what: 'status "down: does not exist"' },
        );
        // Deleting the port removes its status record.
        await driver.deletePort(port.id);
        await eventually(
          async () => (await driver.getPortStatus(port.id).catch(() => 'gone')) === 'gone',
        );
      });

      it('follows a port moved to another host while the orchestrator waits, and stops when it is deleted', async () => {
        const { driver, bed } = cluster;
        const port = await newPort('compute-1');
        const ip = port.fixedIps[0]!.ipAddress;
        const up = driver.waitForPortStatus(port.id, 'up', { timeoutMs: 20_000 });
        up.catch(() => undefined); // awaited below; a step in between may fail first
        await driver.waitForPortStatus(port.id, 'down', { timeoutMs: 5_000 }); // compute-1 has it
        // Rescheduled before its VM was plugged: the VM comes up on compute-2.
        await driver.bindPort(port.id, 'compute-2');
        const host2 = cluster.hosts.get('compute-2')!;
        const vm = await bed.addVm(host2, {
          name: `vm-${port.id.slice(0, 8)}`,
          tapName: port.interfaceName,
          mac: port.mac,
          ipv4: { address: ip, prefixLength: 24, gateway: PRIVATE_SUBNET.gateway },
        });
        expect(await up).toMatchObject({ host: 'compute-2', status: 'up', stale: false });
        expect(await bed.ping(host2, ip)).toBe(true);
        // compute-1 dropped its own route to the port and learns the new one over BGP.
        await bed.waitForPing(cluster.hosts.get('compute-1')!, ip);
        // Deleted while someone waits for it: a typed error at once, not a timeout.
        await bed.removeVm(vm);
        await driver.waitForPortStatus(port.id, 'down', { timeoutMs: 5_000 });
        const t0 = performance.now();
        const gone = expect(
          driver.waitForPortStatus(port.id, 'up', { timeoutMs: 10_000 }),
        ).rejects.toThrow(ResourceNotFoundError);
        await driver.deletePort(port.id);
        await gone;
        expect(performance.now() - t0).toBeLessThan(5_000);
      });

      it('serves /livez, /readyz and /metrics (parsed) from the agent and the DHCP agent', async () => {
        // By DHCP: the lease shows the DHCP agent has caught up with this port.
        const vm = await cluster.addVm('compute-1', { name: 'vm-metrics' });
        await cluster.waitForBgp();
        const agent = cluster.agents.get('compute-1')!;
        const addr = agent.healthAddress!;
        expect(addr.host).toBe('127.0.0.1');
        await agent.idle();
        expect(await check(addr, '/livez')).toEqual({ status: 200, body: 'ok\n' });
        expect(await check(addr, '/readyz')).toEqual({ status: 200, body: 'ok\n' });
        const m = await scrape(addr);
        expect(value(m, 'calyx_endpoints', { status: 'up', host: 'compute-1' })).toBe(
          agent.status.counts().up,
        );
        expect(value(m, 'calyx_endpoints', { status: 'up' })).toBeGreaterThanOrEqual(1);
        expect(value(m, 'calyx_syncer_in_sync')).toBe(1);
        expect(value(m, 'calyx_routes')).toBeGreaterThanOrEqual(1);
        expect(value(m, 'calyx_iptables_chains')).toBeGreaterThan(0);
        expect(value(m, 'calyx_iptables_rules')).toBeGreaterThan(
          value(m, 'calyx_iptables_chains')!,
        );
        expect(value(m, 'calyx_ipset_members')).toBeGreaterThanOrEqual(1);
        // The mesh peer compute-2, over IPv4 and IPv6: what birdc says.
        const established = (await agent.bird.protocols()).filter((p) => p.established).length;
        expect(established).toBe(2);
        expect(value(m, 'calyx_bgp_sessions_up')).toBe(established);
        for (const programmer of ['routes', 'iptables', 'bird']) {
          expect(
            value(m, 'calyx_reconciles_total', { programmer, result: 'ok' }),
          ).toBeGreaterThanOrEqual(1);
          expect(
            value(m, 'calyx_programming_duration_seconds_count', { programmer }),
          ).toBeGreaterThanOrEqual(1);
        }
        const dhcp = cluster.dhcpAgents.get('compute-1')!;
        const d = dhcp.healthAddress!;
        await dhcp.idle();
        expect(await check(d, '/readyz')).toEqual({ status: 200, body: 'ok\n' });
        const dm = await scrape(d);
        expect(value(dm, 'calyx_dnsmasq_instances')).toBe(1);
        expect(value(dm, 'calyx_dhcp_hosts')).toBeGreaterThanOrEqual(1);
        expect(
          value(dm, 'calyx_reconciles_total', { programmer: 'dnsmasq', result: 'ok' }),
        ).toBeGreaterThanOrEqual(1);
        await cluster.bed.removeVm(vm.vm);
      });

      it('lets a killed agent’s liveness expire within its TTL; the driver then refuses bindings there', async () => {
        const { driver } = cluster;
        let killAgent: () => Promise<void>;
        if (backend !== 'memory') {
          // The real program, killed for real: the in-process agent hands over to calyx-agent.
          await cluster.stopAgent('compute-2');
          const health = await freePort();
          const t0Spawn = Date.now();
          const child = cluster.bed.runner.spawn(
            [
              process.execPath,
              AGENT_BIN,
              '--datastore',
              url,
              '--hostname',
              'compute-2',
              '--netns',
              cluster.hosts.get('compute-2')!.netns,
              '--state-dir',
              cluster.agentStateDir('compute-2')!,
              '--liveness-ttl-seconds',
              String(TTL_SECONDS),
              '--health-address',
              `127.0.0.1:${health}`,
              '--log-level',
              'warn',
            ],
            { stderrToLines: true },
          );
          const log: string[] = [];
          void (async () => {
            for await (const l of child.lines) log.push(l);
          })();
          try {
            await eventually(
              async () =>
                (await fetch(`http://127.0.0.1:${health}/readyz`).catch(() => undefined))
                  ?.status === 200,
              { timeoutMs: 20_000, what: 'calyx-agent ready' },
            );
          } catch (e) {
            child.kill('SIGKILL');
            throw new Error(`${(e as Error).message}; calyx-agent said: ${log.join('\n')}`, {
              cause: e,
            });
          }
          const m = await scrape({ host: '127.0.0.1', port: health });
          expect(value(m, 'calyx_syncer_in_sync', { host: 'compute-2' })).toBe(1);
          expect(
            value(m, 'calyx_reconciles_total', { programmer: 'routes', result: 'ok' }),
          ).toBeGreaterThanOrEqual(1);
          expect(value(m, 'process_resident_memory_bytes')).toBeGreaterThan(0);
          // Its own liveness record (a new lease), in sync once its first statuses are out.
          const live = await eventually(async () => {
            const st = await driver.getHostStatus('compute-2');
            return st?.inSync && Date.parse(st.startedAt) > t0Spawn ? st : undefined;
          });
          expect(live).toMatchObject({ agent: 'calyx-agent', inSync: true });
          killAgent = async () => {
            child.kill('SIGKILL');
            expect((await child.exited).signal).toBe('SIGKILL');
          };
        } else {
          // In one process, an agent that stops without a word looks the same to the store.
          killAgent = () => cluster.stopAgent('compute-2');
        }
        expect(await driver.getHostStatus('compute-2')).toBeDefined();
        const t0 = Date.now();
        await killAgent();
        await eventually(async () => (await driver.getHostStatus('compute-2')) === undefined, {
          timeoutMs: (TTL_SECONDS + 2) * 1000,
          intervalMs: 20,
          what: 'liveness to expire',
        });
        const expiredMs = Date.now() - t0;
        console.log(`agent killed: liveness gone after ${expiredMs} ms (TTL ${TTL_SECONDS} s)`);
        // Within the TTL, give or take how often the store looks for expired leases (etcd's
        // lessor and the Redis adapter's sweeper: twice a second) and this poll.
        expect(expiredMs).toBeLessThanOrEqual(TTL_SECONDS * 1000 + 1000);
        await expect(newPort('compute-2')).rejects.toThrow(HostUnavailableError);
        await expect(newPort('compute-2')).rejects.toThrow(/agent is not alive/);
        // The other host still takes ports.
        const ok = await newPort('compute-1');
        await driver.deletePort(ok.id);
      });
    },
  );

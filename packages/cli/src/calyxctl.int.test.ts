// The built `calyxctl` (dist/bin/calyxctl.js, built first by nx: test-int depends on build),
// run as a child process against a real etcd, and against real BIRDs in network namespaces.
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { describeIntegration, eventually } from '@calyx/core/testing';
import { ExecCommandRunner } from '@calyx/dataplane';
import { BirdController } from '@calyx/dataplane-bird';
import { computeBgp } from '@calyx/calc';
import { EtcdDatastore } from '@calyx/datastore-etcd';
import { Ipam, portHandle, type IpamCheckReport } from '@calyx/ipam';
import { keys, parseResource } from '@calyx/model';
import { Testbed, freePort, startEtcd, type StartedEtcd, type TestHost } from '@calyx/testbed';
import { allUnchanged } from './harness.js';
import { readView } from './read.js';
import type { NodeStatus } from './node-status.js';
import type { EndpointExplanation } from './explain.js';

const BIN = fileURLToPath(new URL('../dist/bin/calyxctl.js', import.meta.url));
const NAMESPACE = '/calyxctl-int';

const deployment = `
kind: BgpConfiguration
name: default
connectRetrySeconds: 1
holdSeconds: 9
---
kind: Host
name: compute-1
ipv4Address: 172.31.0.1
---
kind: Host
name: compute-2
ipv4Address: 172.31.0.2
---
kind: Network
id: net-a
---
kind: Subnet
id: sub-a
networkId: net-a
cidr: 10.65.0.0/24
---
kind: IpPool
name: subnet-sub-a
cidr: 10.65.0.0/24
subnetId: sub-a
---
kind: SecurityGroup
id: sg-web
rules:
  - direction: ingress
    protocol: tcp
    portRangeMin: 80
---
kind: Endpoint
id: ep1
host: compute-1
networkId: net-a
mac: fa:16:3e:00:00:01
fixedIps:
  - subnetId: sub-a
    ipAddress: 10.65.0.10
securityGroupIds: [sg-web]
`;

describeIntegration(
  'calyxctl (the built program) on etcd and BIRD',
  { root: true, commands: ['etcd', 'bird', 'birdc', 'ip'] },
  () => {
    let etcd: StartedEtcd;
    let store: EtcdDatastore;
    let bed: Testbed;
    const birds = new Map<string, { bird: BirdController; host: TestHost; dir: string }>();
    const runner = new ExecCommandRunner();
    let url: string;
    const t0 = performance.now();

    /** Runs the built bin; every exit code of the table is an outcome, not a failure. */
    const calyxctl = async (
      args: readonly string[],
      opts: { input?: string; env?: Record<string, string> } = {},
    ) => {
      const r = await runner.run([process.execPath, BIN, ...args], {
        okExitCodes: [0, 1, 2, 3, 4, 5],
        timeoutMs: 60_000,
        ...(opts.input !== undefined ? { input: opts.input } : {}),
        ...(opts.env ? { env: opts.env } : {}),
      });
      return { code: r.exitCode, stdout: r.stdout, stderr: r.stderr };
    };
    const ctl = (...args: string[]) => calyxctl(['--datastore', url, ...args]);

    beforeAll(async () => {
      if (!existsSync(BIN))
        throw new Error(`${BIN} is missing: build first (nx run @calyx/cli:test-int builds it)`);
      etcd = await startEtcd();
      url = `etcd://127.0.0.1:${etcd.clientPort}${NAMESPACE}`;
      store = new EtcdDatastore({ endpoints: [etcd.endpoint], namespace: NAMESPACE });
      bed = await Testbed.create();
      for (const name of ['compute-1', 'compute-2']) {
        const host = await bed.addHost(name);
        const dir = await bed.tempDir(`bird-${name}`);
        birds.set(name, {
          host,
          dir,
          bird: new BirdController({ runner: bed.runner, netns: host.netns, stateDir: dir }),
        });
      }
    }, 60_000);

    afterAll(async () => {
      for (const b of birds.values()) await b.bird.stop().catch(() => undefined);
      await bed?.dispose();
      await store?.close();
      await etcd?.stop();
      console.log(`calyxctl integration: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    }, 60_000);

    it('apply -f - (YAML) writes everything in one transaction; get reads it back in every format', async () => {
      const before = await store.revision();
      const r = await calyxctl(['apply', '-f', '-', '--datastore', url], { input: deployment });
      expect(r.code).toBe(0);
      expect(r.stdout.trim().split('\n')).toHaveLength(8);
      expect(r.stdout).toContain('Endpoint ep1 created');
      expect(await store.revision()).toBe(before + 1n);
      expect(JSON.parse((await store.get(keys.endpointLocation('ep1')))!.value)).toEqual({
        id: 'ep1',
        host: 'compute-1',
      });

      const table = await ctl('get', 'hosts');
      expect(
        table.stdout
          .trim()
          .split('\n')
          .map((l) => l.split(/\s+/).slice(0, 2)),
      ).toEqual([
        ['NAME', 'IPV4'],
        ['compute-1', '172.31.0.1'],
        ['compute-2', '172.31.0.2'],
      ]);
      const json = JSON.parse((await ctl('get', 'endpoint', 'ep1', '-o', 'json')).stdout) as Record<
        string,
        unknown
      >;
      expect(json).toMatchObject({
        kind: 'Endpoint',
        id: 'ep1',
        host: 'compute-1',
        interfaceName: 'tapep1',
      });
      const yaml = (await ctl('get', 'all', '-o', 'yaml')).stdout;
      const docs = parseAllDocuments(yaml).map((d) => d.toJS() as { kind: string });
      expect(docs.map((d) => d.kind).sort()).toEqual([
        'BgpConfiguration',
        'Endpoint',
        'Host',
        'Host',
        'IpPool',
        'Network',
        'SecurityGroup',
        'Subnet',
      ]);
      // What get printed goes back in unchanged.
      const again = await calyxctl(['apply', '-f', '-', '--datastore', url], { input: yaml });
      expect(again.code).toBe(0);
      expect(allUnchanged(again.stdout)).toBe(true);
    });

    it('refuses invalid documents with exit 2 and writes nothing', async () => {
      const before = await store.revision();
      const r = await calyxctl(['apply', '-f', '-', '--datastore', url], {
        input: 'kind: Network\nid: ok\n---\nkind: Network\nid: bad\nmtu: 10\n',
      });
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(
        'stdin: document 2 (line 4): Network bad: mtu 10 must be an MTU in 576..9216',
      );
      expect(await store.revision()).toBe(before);
      expect(await store.get(keys.network('ok'))).toBeUndefined();
    });

    it('splits more documents than etcd takes in one transaction, and deletes them from the file', async () => {
      const docs = Array.from({ length: 120 }, (_, i) => ({ kind: 'Network', id: `bulk-${i}` }));
      const r = await calyxctl(['apply', '-f', '-', '--datastore', url], {
        input: JSON.stringify(docs),
      });
      expect(r.code).toBe(0);
      expect(r.stderr).toContain('writing in 3 transactions');
      expect((await store.list('/calyx/v1/network/bulk-')).items).toHaveLength(120);
      const d = await calyxctl(['delete', '-f', '-', '--datastore', url], {
        input: JSON.stringify(docs),
      });
      expect(d.code).toBe(0);
      expect((await store.list('/calyx/v1/network/bulk-')).items).toHaveLength(0);
    });

    it('moves and deletes an endpoint with its location; a missing one exits 3', async () => {
      const moved = await calyxctl(['apply', '-f', '-', '--datastore', url], {
        input: deployment
          .slice(deployment.indexOf('kind: Endpoint'))
          .replace('host: compute-1', 'host: compute-2'),
      });
      expect(moved.stdout).toBe('Endpoint ep1 configured (moved from compute-1 to compute-2)\n');
      expect(await store.get(keys.endpoint('compute-1', 'ep1'))).toBeUndefined();
      expect(
        JSON.parse((await ctl('get', 'endpointlocation', 'ep1', '-o', 'json')).stdout),
      ).toMatchObject({ host: 'compute-2' });
      const back = await calyxctl(['apply', '-f', '-', '--datastore', url], {
        input: deployment.slice(deployment.indexOf('kind: Endpoint')),
      });
      expect(back.code).toBe(0);
      const missing = await ctl('delete', 'endpoint', 'ep1', 'nope');
      expect(missing.code).toBe(3);
      expect(await store.get(keys.endpoint('compute-1', 'ep1'))).toBeDefined();
    });

    it('ipam check finds a leak and a missing address (exit 1); repair fixes both (exit 0)', async () => {
      const ipam = new Ipam(store);
      const subnet = parseResource('Subnet', {
        id: 'sub-a',
        networkId: 'net-a',
        cidr: '10.65.0.0/24',
      });
      await ipam.assign({
        subnet,
        ip: '10.65.0.99',
        handleId: portHandle('deleted-port'),
        host: 'compute-1',
      });
      const check = await ctl('ipam', 'check', '-o', 'json');
      expect(check.code).toBe(1);
      const report = JSON.parse(check.stdout) as IpamCheckReport;
      expect(report.leaked.map((l) => l.ip)).toEqual(['10.65.0.99']);
      expect(report.missing.map((m) => m.ip)).toEqual(['10.65.0.10']);
      const repair = await ctl('ipam', 'repair');
      expect(repair.code).toBe(0);
      expect(repair.stdout).toContain('released  10.65.0.99');
      expect(repair.stdout).toContain('assigned  10.65.0.10');
      expect((await ctl('ipam', 'check')).code).toBe(0);
      const show = parse((await ctl('ipam', 'show', '-o', 'yaml')).stdout) as {
        blocks: { used: number }[];
      };
      expect(show.blocks.reduce((n, b) => n + b.used, 0)).toBe(1);
      expect((await ctl('ipam', 'show', '--ip', '10.65.0.10')).stdout).toBe(
        '10.65.0.10: allocated to port:ep1 (block 10.65.0.0/26)\n',
      );
    });

    it('node status: agent liveness on a lease, and BGP sessions from a real BIRD', async () => {
      // Each host's BIRD runs the configuration calc computes for it, as its agent would.
      const { view } = await readView(store);
      for (const [name, b] of birds) await b.bird.apply(computeBgp(view, name)!);
      const lease = await store.grantLease(60);
      const now = new Date().toISOString();
      await store.put(
        keys.hostStatus('compute-1'),
        JSON.stringify({
          host: 'compute-1',
          agent: 'test',
          version: '',
          startedAt: now,
          updatedAt: now,
          inSync: true,
          endpoints: 1,
        }),
        { lease: lease.id },
      );
      const b1 = birds.get('compute-1')!;
      const status1 = ['node', 'status', 'compute-1', '--bird-state-dir', b1.dir];
      const args = [...status1, '--netns', b1.host.netns, '-o', 'json'];
      const healthy = await eventually(
        async () => {
          const r = await ctl(...args);
          return r.code === 0 ? r : undefined;
        },
        {
          timeoutMs: 30_000,
          intervalMs: 500,
          what: 'compute-1 healthy with its BGP session established',
        },
      );
      const status = JSON.parse(healthy.stdout) as NodeStatus;
      expect(status.agent).toMatchObject({ alive: true, inSync: true });
      expect(status.bgp?.sessions).toEqual([
        expect.objectContaining({
          peer: 'node-compute-2',
          neighbor: '172.31.0.2',
          established: true,
          state: 'up',
        }),
      ]);
      const text = await ctl(...status1, '--netns', b1.host.netns);
      expect(text.stdout).toMatch(
        /node-compute-2\s+172\.31\.0\.2\s+bgp4_node_compute_2_\w+\s+up\s+Established/,
      );

      // compute-2's BIRD is up, but no agent: unhealthy. The list shows both.
      expect((await ctl('node', 'status', 'compute-2')).code).toBe(1);
      const list = await ctl('node', 'status', '-o', 'json');
      expect((JSON.parse(list.stdout) as NodeStatus[]).map((s) => [s.host, s.agent.alive])).toEqual(
        [
          ['compute-1', true],
          ['compute-2', false],
        ],
      );
      // The agent's lease ends: the host is dead.
      await store.revokeLease(lease.id);
      const dead = await ctl(...args);
      expect(dead.code).toBe(1);
      expect((JSON.parse(dead.stdout) as NodeStatus).agent.alive).toBe(false);
      // A BIRD that is not there.
      const gone = await ctl(
        'node',
        'status',
        'compute-1',
        '--bird-state-dir',
        '/nonexistent',
        '-o',
        'json',
      );
      expect((JSON.parse(gone.stdout) as NodeStatus).bgp?.error).toMatch(/birdc show protocols/);
    });

    it('endpoint explain prints what the host computes; bird.conf is what its BIRD runs', async () => {
      const b1 = birds.get('compute-1')!;
      const r = await ctl('endpoint', 'explain', 'ep1', '--bird-state-dir', b1.dir, '-o', 'json');
      expect(r.code).toBe(0);
      const x = JSON.parse(r.stdout) as EndpointExplanation;
      expect(x.routes?.addresses).toEqual(['10.65.0.10']);
      expect(x.iptables.map((c) => c.chain)).toContain('calyx-fw-tapep1');
      const { readFile } = await import('node:fs/promises');
      expect(x.bgp.birdConf).toBe(await readFile(b1.bird.configFile, 'utf8'));
    });

    it('takes the datastore from a config file or $CALYX_DATASTORE; exit 4 when etcd is not there', async () => {
      const dir = await bed.tempDir('config');
      await writeFile(`${dir}/calyx.yaml`, `datastore: ${url}\n`);
      const viaConfig = await calyxctl([
        'get',
        'network',
        'net-a',
        '--config',
        `${dir}/calyx.yaml`,
      ]);
      expect(viaConfig.code).toBe(0);
      const viaEnv = await calyxctl(['get', 'subnet', '-o', 'json'], {
        env: { CALYX_DATASTORE: url },
      });
      expect((JSON.parse(viaEnv.stdout) as { id: string }[]).map((s) => s.id)).toEqual(['sub-a']);
      const port = await freePort();
      const down = await calyxctl([
        'get',
        'network',
        '--datastore',
        `etcd://127.0.0.1:${port}?timeoutMs=500`,
      ]);
      expect(down.code).toBe(4);
      expect(down.stderr).toMatch(/unavailable/);
    });
  },
);

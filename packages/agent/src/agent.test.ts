import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ManualClock } from '@calyx/core';
import { RecordingRunner } from '@calyx/dataplane';
import { createMemoryDatastore, type MemoryDatastore } from '@calyx/datastore-memory';
import { GapInjectingDatastore } from '@calyx/datastore/testing';
import { ResourceClient } from '@calyx/datastore';
import { eventually } from '@calyx/core/testing';
import { agentConfig, createAgent, type Agent } from './index.js';

/** Waits for the reconcile that follows a change (counted from `before`) to finish. */
async function reconciledOnce(agent: Agent, before: number): Promise<void> {
  await eventually(() => agent.stats.reconciles > before, { what: 'a reconcile' });
  await agent.idle();
}

/** A host with one tap and the gateway interface, answering the programmers' reads. */
function fakeHost(): RecordingRunner {
  const links = [
    { ifindex: 7, ifname: 'tapport-1', flags: ['UP'] },
    { ifindex: 8, ifname: 'calyx-gw', flags: ['UP'] },
  ];
  return new RecordingRunner()
    .on(['ip', '-json', '-force', '-batch', '-'], {
      stdout: [
        JSON.stringify([{ ifname: 'calyx-gw', addr_info: [] }]),
        JSON.stringify(links),
        '[]',
        '[]',
      ].join('\n'),
    })
    .on(['ip', '-6', '-json', '-batch', '-'], { stdout: '[]\n[]\n' })
    .on(['birdc'], (c) => ({
      stdout: c.argv.includes('status') ? 'Daemon is up and running' : 'Reconfigured',
    }));
}

const stateReads = (r: RecordingRunner) => r.callsOf('ip', '-json', '-force', '-batch');

async function seed(store: MemoryDatastore): Promise<void> {
  const c = new ResourceClient(store);
  await c.create('Network', { id: 'net' });
  await c.create('Subnet', { id: 'sub', networkId: 'net', cidr: '10.65.0.0/24' });
  await c.create('Host', { name: 'compute-1', ipv4Address: '172.31.0.1' });
  await c.create('Host', { name: 'compute-2', ipv4Address: '172.31.0.2' });
  await c.create('Endpoint', {
    id: 'port-1',
    host: 'compute-1',
    networkId: 'net',
    mac: 'fa:16:3e:00:00:01',
    fixedIps: [{ subnetId: 'sub', ipAddress: '10.65.0.10' }],
  });
}

describe('Agent (recorded dataplane)', () => {
  let store: MemoryDatastore;
  let stateDir: string;
  let agent: Agent | undefined;
  beforeEach(async () => {
    store = createMemoryDatastore();
    stateDir = await mkdtemp(join(tmpdir(), 'calyx-agent-test-'));
    await seed(store);
  });
  afterEach(async () => {
    await agent?.close();
    agent = undefined;
    await store.close();
    await rm(stateDir, { recursive: true, force: true });
  });

  const batches = (r: RecordingRunner) =>
    r.callsOf('ip', '-force', '-batch').map((c) => c.input ?? '');

  it('touches the dataplane only once the view is complete, then programs routes and BIRD', async () => {
    const runner = fakeHost();
    const gappy = new GapInjectingDatastore(store);
    gappy.freeze();
    agent = createAgent(
      gappy,
      agentConfig({ hostname: 'compute-1', stateDir, resyncIntervalMs: 0 }),
      { runner },
    );
    const started = agent.start();
    await new Promise((r) => setTimeout(r, 20));
    expect(runner.calls.map((c) => c.argv.join(' '))).toEqual([]);
    gappy.thaw();
    await started;
    expect(batches(runner).join('')).toContain(
      'route replace 10.65.0.10/32 dev tapport-1 scope link proto 80',
    );
    expect(batches(runner).join('')).toContain('address add 10.65.0.1/32 dev calyx-gw');
    const conf = await readFile(join(stateDir, 'bird.conf'), 'utf8');
    expect(conf).toContain('neighbor 172.31.0.2 as 64512;');
    expect(runner.callsOf('birdc', '-s', join(stateDir, 'bird.ctl'), 'configure')).toHaveLength(1);
  });

  it('reports each endpoint’s status and the host’s liveness', async () => {
    const runner = fakeHost();
    const c = new ResourceClient(store);
    const port = (await c.get('Endpoint', '/calyx/v1/host/compute-1/endpoint/port-1'))!.value;
    await c.create('Endpoint', { ...port, id: 'port-2', interfaceName: 'tapport-2', fixedIps: [] });
    await c.create('Endpoint', { ...port, id: 'port-3', adminStateUp: false, fixedIps: [] });
    agent = createAgent(
      store,
      agentConfig({ hostname: 'compute-1', stateDir, resyncIntervalMs: 0, statusFlushMs: 0 }),
      { runner },
    );
    await agent.start();
    await agent.status.flush();
    const statuses = async () =>
      Object.fromEntries(
        (await c.list('EndpointStatus')).items.map((i) => [
          i.value.endpointId,
          `${i.value.status}: ${i.value.reason}`,
        ]),
      );
    expect(await statuses()).toEqual({
      'port-1': 'up: ',
      'port-2': 'down: interface tapport-2 does not exist',
      'port-3': 'down: administratively down',
    });
    // Each report names the revision of the endpoint it is about.
    const p1 = (await c.get('Endpoint', '/calyx/v1/host/compute-1/endpoint/port-1'))!;
    const s1 = await c.get('EndpointStatus', '/calyx/v1/status/compute-1/endpoint/port-1');
    expect(s1?.value.endpointRevision).toBe(String(p1.modRevision));
    const live = await c.get('HostStatus', '/calyx/v1/status/compute-1/liveness');
    expect(live?.value).toMatchObject({ host: 'compute-1', inSync: true, endpoints: 3 });
    expect(live?.lease).not.toBeNull();
    expect(agent.ready()).toEqual({ ok: true, reasons: [] });
    // A port leaving the host takes its status record with it.
    const before = agent.stats.reconciles;
    await c.delete('Endpoint', '/calyx/v1/host/compute-1/endpoint/port-2');
    await reconciledOnce(agent, before);
    await agent.status.flush();
    expect(Object.keys(await statuses()).sort()).toEqual(['port-1', 'port-3']);
  });

  it('says in its liveness record when it loses sync, and again when it is back', async () => {
    const runner = fakeHost();
    const gappy = new GapInjectingDatastore(store);
    const c = new ResourceClient(store);
    agent = createAgent(
      gappy,
      agentConfig({ hostname: 'compute-1', stateDir, resyncIntervalMs: 0, statusFlushMs: 0 }),
      { runner },
    );
    await agent.start();
    const inSync = async () =>
      (await c.get('HostStatus', '/calyx/v1/status/compute-1/liveness'))?.value.inSync;
    await eventually(async () => (await inSync()) === true, { what: 'in sync reported' });
    gappy.freeze(); // the watch loses its history; the re-read is held
    await eventually(async () => (await inSync()) === false, { what: 'out of sync reported' });
    expect(agent.ready().reasons).toContain('datastore view not in sync yet');
    gappy.thaw();
    await eventually(async () => (await inSync()) === true, { what: 'back in sync reported' });
  });

  it('applies only the difference for a change, and leaves BIRD alone when BGP inputs did not change', async () => {
    const runner = fakeHost();
    agent = createAgent(
      store,
      agentConfig({ hostname: 'compute-1', stateDir, resyncIntervalMs: 0 }),
      { runner },
    );
    await agent.start();
    runner.clear();
    const before = agent.stats.reconciles;
    await new ResourceClient(store).delete('Endpoint', '/calyx/v1/host/compute-1/endpoint/port-1');
    await reconciledOnce(agent, before);
    expect(batches(runner)).toEqual([
      'route del 10.65.0.10/32 dev tapport-1 proto 80\nneigh del 10.65.0.10 dev tapport-1\naddress del 10.65.0.1/32 dev calyx-gw\n',
    ]);
    expect(runner.callsOf('birdc', '-s', join(stateDir, 'bird.ctl'), 'configure')).toHaveLength(0);
    expect(stateReads(runner)).toHaveLength(0); // no re-read between resyncs
  });

  it('programs security groups before routes; a rule change rewrites the group chains only', async () => {
    const runner = fakeHost();
    const c = new ResourceClient(store);
    await c.create('SecurityGroup', {
      id: 'web',
      rules: [{ direction: 'ingress', protocol: 'tcp', portRangeMin: 80 }],
    });
    const port = (await c.get('Endpoint', '/calyx/v1/host/compute-1/endpoint/port-1'))!;
    await c.update('Endpoint', { ...port.value, securityGroupIds: ['web'] });
    agent = createAgent(
      store,
      agentConfig({ hostname: 'compute-1', stateDir, resyncIntervalMs: 0 }),
      { runner },
    );
    await agent.start();
    const order = runner.calls.map((x) => x.argv.slice(0, 3).join(' '));
    const restore = order.indexOf('iptables-restore --noflush');
    expect(restore).toBeGreaterThanOrEqual(0);
    expect(restore).toBeLessThan(order.indexOf('ip -force -batch'));
    expect(runner.callsOf('iptables-restore')[0]!.input).toContain(':calyx-tw-tapport-1 - [0:0]');
    runner.clear();
    const before = agent.stats.reconciles;
    const sg = (await c.get('SecurityGroup', '/calyx/v1/securitygroup/web'))!;
    await c.update('SecurityGroup', {
      ...sg.value,
      rules: [{ direction: 'ingress', protocol: 'tcp', portRangeMin: 443 }],
    });
    await reconciledOnce(agent, before);
    const inputs = runner.callsOf('iptables-restore').map((x) => x.input ?? '');
    expect(inputs).toHaveLength(1);
    const declared = inputs[0]!.split('\n').filter((l) => l.startsWith(':'));
    expect(declared.map((l) => l.slice(1, 10))).toEqual(['calyx-si-']);
    expect(inputs[0]).toContain('--dport 443');
    expect(batches(runner)).toEqual([]);
  });

  it('re-reads the dataplane on the periodic resync', async () => {
    const runner = fakeHost();
    const clock = new ManualClock();
    agent = createAgent(
      store,
      agentConfig({ hostname: 'compute-1', stateDir, resyncIntervalMs: 10_000 }),
      { runner, clock },
    );
    await agent.start();
    runner.clear();
    const before = agent.stats.reconciles;
    clock.advance(10_000);
    await reconciledOnce(agent, before);
    expect(stateReads(runner)).toHaveLength(1);
    expect(agent.stats.reconciles).toBeGreaterThanOrEqual(2);
  });
});

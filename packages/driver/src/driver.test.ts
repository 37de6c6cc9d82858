import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Container } from 'inversify';
import { ManualClock } from '@calyx/core';
import { eventually } from '@calyx/core/testing';
import { MemoryDatastore, MemoryEngine, createMemoryDatastore } from '@calyx/datastore-memory';
import { StatusReporter, datastoreModule } from '@calyx/datastore';
import { interceptDatastore } from '@calyx/datastore/testing';
import { ValidationError, keys } from '@calyx/model';
import {
  AddressInUseError,
  CalyxDriver,
  DRIVER,
  HostUnavailableError,
  ImmutableFieldError,
  PortStatusTimeoutError,
  ResourceExistsError,
  ResourceInUseError,
  ResourceNotFoundError,
  driverModule,
} from './index.js';

describe('CalyxDriver', () => {
  let driver: CalyxDriver;
  let agents: StatusReporter[] = [];

  afterEach(async () => {
    await Promise.all(agents.map((a) => a.close({ revoke: true })));
    agents = [];
  });

  beforeEach(async () => {
    driver = new CalyxDriver(createMemoryDatastore());
    // Live agents on both hosts: ports may only be bound where one runs.
    for (const hostname of ['compute-1', 'compute-2']) {
      const a = new StatusReporter(driver.store, { hostname });
      await a.start();
      agents.push(a);
    }
    await driver.createNetwork({ id: 'net-a' });
    await driver.createSubnet({ id: 'sub-a', networkId: 'net-a', cidr: '10.65.0.0/24' });
    await driver.createSecurityGroup({
      id: 'sg-web',
      rules: [{ direction: 'ingress', protocol: 'tcp', portRangeMin: 80 }],
    });
    await driver.registerHost({ name: 'compute-1', ipv4Address: '172.31.0.1' });
    await driver.registerHost({ name: 'compute-2', ipv4Address: '172.31.0.2' });
  });

  const port = (id: string, ip: string, extra: object = {}) => ({
    id,
    networkId: 'net-a',
    mac: 'fa:16:3e:00:00:01',
    fixedIps: [{ subnetId: 'sub-a', ipAddress: ip }],
    securityGroupIds: ['sg-web'],
    ...extra,
  });

  it('creates, binds, rebinds, unbinds and deletes a port, keeping its location index right', async () => {
    const p = await driver.createPort(port('port-1', '10.65.0.10'));
    expect(p.host).toBeNull();
    expect(await driver.store.get(keys.endpoint(null, 'port-1'))).toBeDefined();
    await driver.bindPort('port-1', 'compute-1');
    expect(await driver.store.get(keys.endpoint(null, 'port-1'))).toBeUndefined();
    expect((await driver.getPort('port-1'))?.host).toBe('compute-1');
    await driver.bindPort('port-1', 'compute-2');
    expect(await driver.store.get(keys.endpoint('compute-1', 'port-1'))).toBeUndefined();
    expect((await driver.listPorts({ host: 'compute-2' })).map((x) => x.id)).toEqual(['port-1']);
    await driver.unbindPort('port-1');
    expect((await driver.getPort('port-1'))?.host).toBeNull();
    await driver.deletePort('port-1');
    expect(await driver.getPort('port-1')).toBeUndefined();
    expect(await driver.store.get(keys.endpointLocation('port-1'))).toBeUndefined();
  });

  it('refuses bad ports with typed errors and writes nothing', async () => {
    const before = await driver.store.revision();
    await expect(driver.createPort(port('p', '10.65.1.10'))).rejects.toThrow(
      'Endpoint p: fixedIps[0].ipAddress 10.65.1.10 is outside 10.65.0.0/24',
    );
    await expect(driver.createPort(port('p', '10.65.0.1'))).rejects.toThrow(/is the gateway/);
    await expect(driver.createPort(port('p', '10.65.0.10', { networkId: 'nope' }))).rejects.toThrow(
      ResourceNotFoundError,
    );
    await expect(
      driver.createPort(port('p', '10.65.0.10', { securityGroupIds: ['sg-nope'] })),
    ).rejects.toThrow('SecurityGroup sg-nope does not exist');
    await expect(driver.createPort(port('p', '10.65.0.10', { host: 'compute-9' }))).rejects.toThrow(
      HostUnavailableError,
    );
    await expect(driver.createPort(port('p', '10.65.0.10', { mac: 'zz' }))).rejects.toThrow(
      ValidationError,
    );
    expect(await driver.store.revision()).toBe(before);
    await driver.createPort(port('p1', '10.65.0.10', { host: 'compute-1' }));
    await expect(driver.createPort(port('p2', '10.65.0.10'))).rejects.toThrow(AddressInUseError);
    await expect(driver.createPort(port('p1', '10.65.0.11'))).rejects.toThrow(ResourceExistsError);
    // Same first 11 characters → same tap name on one host.
    await driver.createPort(port('abcdefghijk-1', '10.65.0.20', { host: 'compute-1' }));
    await expect(
      driver.createPort(port('abcdefghijk-2', '10.65.0.21', { host: 'compute-1' })),
    ).rejects.toThrow(/Interface compute-1\/tapabcdefghijk is in use/);
  });

  it('protects resources in use and immutable fields', async () => {
    await driver.createPort(port('p1', '10.65.0.10', { host: 'compute-1' }));
    await expect(driver.deleteNetwork('net-a')).rejects.toThrow(ResourceInUseError);
    await expect(driver.deleteSubnet('sub-a')).rejects.toThrow('Subnet sub-a is in use by port p1');
    await expect(driver.deleteSecurityGroup('sg-web')).rejects.toThrow(ResourceInUseError);
    await expect(driver.deregisterHost('compute-1')).rejects.toThrow(ResourceInUseError);
    await expect(
      driver.updateSubnet({ id: 'sub-a', networkId: 'net-a', cidr: '10.66.0.0/24' }),
    ).rejects.toThrow(ImmutableFieldError);
    await driver.deletePort('p1');
    await driver.deleteSubnet('sub-a');
    await driver.deleteNetwork('net-a');
    expect(await driver.listNetworks()).toEqual([]);
  });

  it('rejects overlapping subnets, even when created concurrently', async () => {
    await expect(
      driver.createSubnet({ id: 'sub-b', networkId: 'net-a', cidr: '10.65.0.128/25' }),
    ).rejects.toThrow('Subnet sub-b: cidr 10.65.0.128/25 overlaps subnet sub-a (10.65.0.0/24)');
    const results = await Promise.allSettled([
      driver.createSubnet({ id: 'sub-x', networkId: 'net-a', cidr: '10.70.0.0/16' }),
      driver.createSubnet({ id: 'sub-y', networkId: 'net-a', cidr: '10.70.5.0/24' }),
      driver.createSubnet({ id: 'sub-z', networkId: 'net-a', cidr: '10.71.0.0/24' }),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect((await driver.listSubnets()).map((s) => s.id).sort()).toEqual([
      'sub-a',
      'sub-x',
      'sub-z',
    ]);
  });

  it('checks remote security group references', async () => {
    await expect(
      driver.createSecurityGroup({
        id: 'sg-db',
        rules: [{ direction: 'ingress', remoteGroupId: 'sg-ghost' }],
      }),
    ).rejects.toThrow(
      'SecurityGroup sg-db: rules[0].remoteGroupId sg-ghost is not an existing security group',
    );
    await driver.createSecurityGroup({
      id: 'sg-db',
      rules: [
        { direction: 'ingress', remoteGroupId: 'sg-web' },
        { direction: 'ingress', remoteGroupId: 'sg-db' },
      ],
    });
    await expect(driver.deleteSecurityGroup('sg-web')).rejects.toThrow(
      'SecurityGroup sg-web is in use by security group sg-db',
    );
  });

  it('keeps concurrent binds of one port consistent', async () => {
    await driver.createPort(port('p1', '10.65.0.10'));
    await Promise.all([
      driver.bindPort('p1', 'compute-1'),
      driver.bindPort('p1', 'compute-2'),
      driver.bindPort('p1', 'compute-1'),
    ]);
    const all = await driver.listPorts();
    expect(all.filter((p) => p.id === 'p1')).toHaveLength(1);
    expect((await driver.getPort('p1'))?.host).toBe(all.find((p) => p.id === 'p1')?.host);
  });

  it('stores BGP settings, peers and pools', async () => {
    await driver.setBgpConfiguration({ nodeToNodeMesh: false, asNumber: 64600 });
    expect((await driver.getBgpConfiguration())?.asNumber).toBe(64600);
    await driver.putBgpPeer({
      name: 'edge',
      peerIp: '172.31.0.254',
      asNumber: 65000,
      role: 'edge',
    });
    await driver.putIpPool({ name: 'public', cidr: '203.0.113.0/24', advertise: true });
    await driver.deleteBgpPeer('edge');
    await expect(driver.deleteBgpPeer('edge')).rejects.toThrow(ResourceNotFoundError);
  });

  it('is available through DI', () => {
    const c = new Container();
    c.load(datastoreModule(driver.store), driverModule());
    expect(c.get<CalyxDriver>(DRIVER)).toBeInstanceOf(CalyxDriver);
  });
});

describe('CalyxDriver with IPAM', () => {
  it('allocates missing addresses, honours fixed ones, rejects taken ones and releases on delete', async () => {
    const driver = new CalyxDriver(createMemoryDatastore(), { requireLiveAgent: false });
    await driver.createNetwork({ id: 'n' });
    await driver.createSubnet({
      id: 's4',
      networkId: 'n',
      cidr: '10.70.0.0/24',
      allocationPools: [{ start: '10.70.0.100', end: '10.70.0.199' }],
    });
    await driver.createSubnet({ id: 's6', networkId: 'n', cidr: 'fd00:70::/64' });
    await driver.registerHost({ name: 'compute-1', ipv4Address: '172.31.0.1' });
    expect((await driver.store.get('/calyx/v1/ippool/subnet-s4'))?.value).toContain(
      '"subnetId":"s4"',
    );

    const auto = await driver.createPort({
      id: 'p-auto',
      networkId: 'n',
      mac: 'fa:16:3e:00:00:01',
      host: 'compute-1',
    });
    expect(auto.fixedIps).toEqual([
      { subnetId: 's4', ipAddress: '10.70.0.100' },
      { subnetId: 's6', ipAddress: 'fd00:70::2' },
    ]);
    const bySubnet = await driver.createPort({
      id: 'p-sub',
      networkId: 'n',
      mac: 'fa:16:3e:00:00:02',
      fixedIps: [{ subnetId: 's4' }],
    });
    expect(bySubnet.fixedIps).toEqual([{ subnetId: 's4', ipAddress: '10.70.0.101' }]);
    const fixed = await driver.createPort({
      id: 'p-fixed',
      networkId: 'n',
      mac: 'fa:16:3e:00:00:03',
      fixedIps: [{ ipAddress: '10.70.0.5' }],
    });
    expect(fixed.fixedIps).toEqual([{ subnetId: 's4', ipAddress: '10.70.0.5' }]);
    const before = await driver.store.revision();
    await expect(
      driver.createPort({
        id: 'p-clash',
        networkId: 'n',
        mac: 'fa:16:3e:00:00:04',
        fixedIps: [{ ipAddress: '10.70.0.5' }],
      }),
    ).rejects.toThrow('address 10.70.0.5 is already used by port p-fixed');
    await expect(
      driver.createPort({
        id: 'p-gw',
        networkId: 'n',
        mac: 'fa:16:3e:00:00:04',
        fixedIps: [{ ipAddress: '10.70.0.1' }],
      }),
    ).rejects.toThrow(
      'Endpoint p-gw: fixedIps[0].ipAddress 10.70.0.1 is the gateway of 10.70.0.0/24',
    );
    await expect(
      driver.createPort({
        id: 'p-far',
        networkId: 'n',
        mac: 'fa:16:3e:00:00:04',
        fixedIps: [{ ipAddress: '10.99.0.5' }],
      }),
    ).rejects.toThrow(/is in no subnet of network n/);
    expect(await driver.store.revision()).toBe(before); // nothing written, nothing left allocated
    // Changing fixed IPs allocates the new one and releases the old one.
    const moved = await driver.updatePort({ ...fixed, fixedIps: [{ ipAddress: '10.70.0.6' }] });
    expect(moved.fixedIps.map((f) => f.ipAddress)).toEqual(['10.70.0.6']);
    expect(await driver.ipam.holderOf('10.70.0.5')).toBeUndefined();
    await driver.deletePort('p-auto');
    expect(await driver.ipam.holderOf('10.70.0.100')).toBeUndefined();
    const { checkIpam } = await import('@calyx/ipam');
    expect((await checkIpam(driver.ipam)).ok).toBe(true);
    await expect(driver.deleteSubnet('s4')).rejects.toThrow(ResourceInUseError);
    await driver.deletePort('p-sub');
    await driver.deletePort('p-fixed');
    await driver.deleteSubnet('s4');
    expect(await driver.store.get('/calyx/v1/ippool/subnet-s4')).toBeUndefined();
  });
});

describe('port status and agent liveness', () => {
  const setup = async () => {
    const clock = new ManualClock();
    const engine = new MemoryEngine({ clock });
    const driver = new CalyxDriver(new MemoryDatastore(engine));
    await driver.createNetwork({ id: 'n' });
    await driver.createSubnet({ id: 's', networkId: 'n', cidr: '10.70.0.0/24' });
    await driver.registerHost({ name: 'compute-1', ipv4Address: '172.31.0.1' });
    await driver.registerHost({ name: 'compute-2', ipv4Address: '172.31.0.2' });
    const agent = new StatusReporter(new MemoryDatastore(engine), {
      hostname: 'compute-1',
      ttlSeconds: 3,
      clock,
    });
    await agent.start();
    const port = (id: string, host: string | null) =>
      driver.createPort({ id, networkId: 'n', mac: 'fa:16:3e:00:00:01', host });
    return { clock, engine, driver, agent, port };
  };

  it('refuses to bind ports to a host without a live agent, and again once its liveness expires', async () => {
    const { clock, driver, agent, port } = await setup();
    await port('p1', 'compute-1');
    const before = await driver.store.revision();
    await expect(port('p2', 'compute-2')).rejects.toThrow(HostUnavailableError);
    await expect(port('p2', 'compute-2')).rejects.toThrow(/agent is not alive/);
    expect(await driver.store.revision()).toBe(before);
    await port('p3', null);
    await expect(driver.bindPort('p3', 'compute-2')).rejects.toThrow(HostUnavailableError);
    expect(await driver.getHostStatus('compute-1')).toMatchObject({ host: 'compute-1' });
    expect((await driver.listHostStatuses()).map((h) => h.host)).toEqual(['compute-1']);
    // The agent dies (stops refreshing without revoking): its record expires with the TTL.
    await agent.close();
    clock.advance(3_001);
    await new Promise((r) => setImmediate(r));
    expect(await driver.getHostStatus('compute-1')).toBeUndefined();
    await expect(driver.bindPort('p3', 'compute-1')).rejects.toThrow(HostUnavailableError);
    // A port already there can still be updated (no new binding).
    const p1 = (await driver.getPort('p1'))!;
    await driver.updatePort({ ...p1, name: 'renamed' });
  });

  it('binds only while the liveness record exists at commit time, not just when it was checked', async () => {
    const { driver, port } = await setup();
    // The agent's record expires between the driver's check and its write.
    let expireBeforeNextTxn = false;
    const racing = new CalyxDriver(
      interceptDatastore(driver.store, (inner) => ({
        txn: async (t) => {
          if (expireBeforeNextTxn) {
            expireBeforeNextTxn = false;
            await inner.delete('/calyx/v1/status/compute-1/liveness');
          }
          return inner.txn(t);
        },
      })),
    );
    const liveness = (await driver.store.get('/calyx/v1/status/compute-1/liveness'))!;
    expireBeforeNextTxn = true;
    const before = await driver.store.list('/calyx/v1/host/');
    await expect(
      racing.createPort({ id: 'p9', networkId: 'n', mac: 'fa:16:3e:00:00:09', host: 'compute-1' }),
    ).rejects.toThrow(HostUnavailableError);
    expect(await driver.getPort('p9')).toBeUndefined();
    expect((await driver.store.list('/calyx/v1/host/')).items).toEqual(before.items);
    // A port already bound elsewhere is not moved there either.
    await expect(port('p10', null)).resolves.toMatchObject({ host: null });
    await driver.store.put(liveness.key, liveness.value); // alive again when checked…
    expireBeforeNextTxn = true; // …and gone when written
    await expect(racing.bindPort('p10', 'compute-1')).rejects.toThrow(/agent is not alive/);
    expect((await driver.getPort('p10'))?.host).toBeNull();
  });

  it('reports a port’s status and waits for "up" without polling', async () => {
    const { clock, driver, agent, port } = await setup();
    await port('p1', 'compute-1');
    expect((await driver.getPortStatus('p1')).status).toBe('unknown');
    const events: string[] = [];
    const ac = new AbortController();
    const watching = (async () => {
      for await (const e of driver.watchPortStatus({ signal: ac.signal })) {
        events.push(`${e.portId}:${e.status}`);
        if (events.length === 3) ac.abort();
      }
    })();
    const waiting = driver.waitForPortStatus('p1', 'up', { timeoutMs: 5_000 });
    agent.report(new Map([['p1', { status: 'down', reason: 'interface tapp1 does not exist' }]]), {
      inSync: true,
    });
    clock.advance(100);
    await agent.flush();
    agent.report(new Map([['p1', { status: 'up', reason: '' }]]), { inSync: true });
    clock.advance(100);
    await agent.flush();
    expect(await waiting).toMatchObject({ portId: 'p1', host: 'compute-1', status: 'up' });
    expect(await driver.getPortStatus('p1')).toMatchObject({ status: 'up', reason: '' });
    agent.report(new Map(), { inSync: true });
    clock.advance(100);
    await agent.flush();
    await watching;
    expect(events).toEqual(['p1:down', 'p1:up', 'p1:unknown']);
    await agent.close({ revoke: true });
  });

  it('does not take a report about an earlier port (deleted and created again) for the current one', async () => {
    const { clock, driver, agent, port } = await setup();
    await port('p1', 'compute-1');
    const rev1 = (await driver.getPortStatus('p1')).portRevision;
    const upFor = (revision: bigint) =>
      new Map([['p1', { status: 'up' as const, reason: '', endpointRevision: revision }]]);
    agent.report(upFor(rev1), { inSync: true });
    await agent.flush();
    expect(await driver.getPortStatus('p1')).toMatchObject({
      status: 'up',
      reportedRevision: rev1,
      portRevision: rev1,
      stale: false,
    });
    // Deleted and created again before the agent noticed: its last report is still there.
    await driver.deletePort('p1');
    await port('p1', 'compute-1');
    const now = await driver.getPortStatus('p1');
    expect(now).toMatchObject({ status: 'up', reportedRevision: rev1, stale: true });
    expect(now.portRevision).toBeGreaterThan(rev1);
    const waiting = driver.waitForPortStatus('p1', 'up', { timeoutMs: 5_000 });
    let settled = false;
    void waiting.then(() => (settled = true));
    // Another report about the old port changes nothing…
    agent.report(new Map([['p1', { status: 'up', reason: 'again', endpointRevision: rev1 }]]), {
      inSync: true,
    });
    clock.advance(100);
    await agent.flush();
    await new Promise((r) => setImmediate(r));
    expect(settled).toBe(false);
    // …the one about the new port is what it waited for.
    agent.report(upFor(now.portRevision), { inSync: true });
    clock.advance(100);
    await agent.flush();
    expect(await waiting).toMatchObject({
      status: 'up',
      reportedRevision: now.portRevision,
      stale: false,
    });
    await agent.close({ revoke: true });
  });

  it('says what it last saw when a port does not come up in time', async () => {
    const { driver, agent, port } = await setup();
    await port('p1', 'compute-1');
    agent.report(new Map([['p1', { status: 'down', reason: 'interface tapp1 is down' }]]), {
      inSync: true,
    });
    await agent.flush();
    const e = await driver
      .waitForPortStatus('p1', 'up', { timeoutMs: 50 })
      .catch((x: unknown) => x);
    expect(e).toBeInstanceOf(PortStatusTimeoutError);
    expect((e as Error).message).toBe(
      'port p1 is not up after 50 ms (last status: down, interface tapp1 is down)',
    );
    const ac = new AbortController();
    const aborted = driver.waitForPortStatus('p1', 'up', { signal: ac.signal });
    ac.abort();
    await expect(aborted).rejects.toThrow(/waiting for port p1 to be up/);
    await agent.close({ revoke: true });
  });

  it('follows a port bound or moved while it waits, and stops when the port is deleted', async () => {
    const { clock, engine, driver, agent, port } = await setup();
    const agent2 = new StatusReporter(new MemoryDatastore(engine), {
      hostname: 'compute-2',
      ttlSeconds: 3,
      clock,
    });
    await agent2.start();
    const settledFlag = (p: Promise<unknown>) => {
      const flag = { settled: false };
      void p.then(
        () => (flag.settled = true),
        () => (flag.settled = true),
      );
      return flag;
    };
    // Unbound when the wait begins: it waits for the binding, then for that host's agent.
    await port('p1', null);
    const bound = driver.waitForPortStatus('p1', 'up', { timeoutMs: 5_000 });
    const boundFlag = settledFlag(bound);
    await driver.bindPort('p1', 'compute-1');
    await new Promise((r) => setImmediate(r));
    expect(boundFlag.settled).toBe(false);
    agent.report(new Map([['p1', { status: 'up', reason: '' }]]), { inSync: true });
    await agent.flush();
    expect(await bound).toMatchObject({ host: 'compute-1', status: 'up' });
    // Moved while waiting: compute-1's (now stale) report does not count, compute-2's does.
    const moved = driver.waitForPortStatus('p1', 'up', { timeoutMs: 5_000 });
    agent.report(new Map([['p1', { status: 'down', reason: 'interface tapp1 is down' }]]), {
      inSync: true,
    });
    clock.advance(100);
    await agent.flush();
    const movedFlag = settledFlag(moved);
    await driver.bindPort('p1', 'compute-2');
    agent.report(new Map([['p1', { status: 'up', reason: '' }]]), { inSync: true });
    clock.advance(100);
    await agent.flush();
    await new Promise((r) => setImmediate(r));
    expect(movedFlag.settled).toBe(false);
    agent2.report(new Map([['p1', { status: 'up', reason: '' }]]), { inSync: true });
    await agent2.flush();
    const now = await driver.getPort('p1');
    expect(await moved).toMatchObject({ host: 'compute-2', status: 'up', stale: false });
    expect(now?.host).toBe('compute-2');
    // Deleted while waiting: ResourceNotFoundError, not a timeout.
    agent2.report(new Map([['p1', { status: 'down', reason: 'interface tapp1 is down' }]]), {
      inSync: true,
    });
    clock.advance(100);
    await agent2.flush();
    const deleted = expect(
      driver.waitForPortStatus('p1', 'up', { timeoutMs: 5_000 }),
    ).rejects.toThrow(ResourceNotFoundError);
    await new Promise((r) => setImmediate(r));
    await driver.deletePort('p1');
    await deleted;
    await expect(driver.waitForPortStatus('nope', 'up')).rejects.toThrow(ResourceNotFoundError);
    await agent.close({ revoke: true });
    await agent2.close({ revoke: true });
  });

  it('does not take the report about a port deleted and created again just before its first read', async () => {
    const { clock, driver, agent, port } = await setup();
    await port('p1', 'compute-1');
    const rev1 = (await driver.getPortStatus('p1')).portRevision;
    agent.report(new Map([['p1', { status: 'up', reason: '', endpointRevision: rev1 }]]), {
      inSync: true,
    });
    await agent.flush();
    // Between the wait locating the port and its first read, the port is replaced.
    let replaced = false;
    const racing = new CalyxDriver(
      interceptDatastore(driver.store, (inner) => ({
        txn: async (req) => {
          if (!replaced && req.success.length > 0 && req.success.every((o) => o.type === 'get')) {
            replaced = true;
            await driver.deletePort('p1');
            await port('p1', 'compute-1');
          }
          return inner.txn(req);
        },
      })),
    );
    const waiting = racing.waitForPortStatus('p1', 'up', { timeoutMs: 5_000 });
    let settled = false;
    void waiting.then(
      () => (settled = true),
      () => (settled = true),
    );
    await eventually(() => replaced, { what: 'the port replaced' });
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
    expect(settled).toBe(false);
    const now = await driver.getPortStatus('p1');
    expect(now).toMatchObject({ status: 'up', reportedRevision: rev1, stale: true });
    agent.report(
      new Map([['p1', { status: 'up', reason: '', endpointRevision: now.portRevision }]]),
      {
        inSync: true,
      },
    );
    clock.advance(100);
    await agent.flush();
    expect(await waiting).toMatchObject({ reportedRevision: now.portRevision, stale: false });
    await agent.close({ revoke: true });
  });

  it('ends at once for a location left without its port record (no endless re-reading)', async () => {
    const { driver, agent, port } = await setup();
    await port('p1', 'compute-1');
    await driver.store.delete(keys.endpoint('compute-1', 'p1'));
    await expect(driver.waitForPortStatus('p1', 'up', { timeoutMs: 5_000 })).rejects.toThrow(
      ResourceNotFoundError,
    );
    await agent.close({ revoke: true });
  });

  it('reads again when its watch’s history was compacted away', async () => {
    const { driver, agent, port } = await setup();
    await port('p1', 'compute-1');
    // The first watch of the driver's store ends at once with the resync signal.
    let first = true;
    let watching!: () => void;
    const watched = new Promise<void>((r) => (watching = r));
    const compacting = interceptDatastore(driver.store, (inner) => ({
      watch: (prefix, o) => {
        if (!first) {
          watching();
          return inner.watch(prefix, o);
        }
        first = false;
        return (async function* () {
          yield { type: 'resync' as const, reason: 'compacted' as const, compactRevision: 1n };
        })();
      },
    }));
    const viaCompacting = new CalyxDriver(compacting);
    const waiting = viaCompacting.waitForPortStatus('p1', 'up', { timeoutMs: 5_000 });
    await watched; // the second watch, after the compacted first one and a second read
    agent.report(new Map([['p1', { status: 'up', reason: '' }]]), { inSync: true });
    await agent.flush();
    expect((await waiting).status).toBe('up');
    expect(first).toBe(false);
    await agent.close({ revoke: true });
  });
});

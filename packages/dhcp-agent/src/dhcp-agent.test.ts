import { describe, expect, it } from 'vitest';
import { eventually } from '@calyx/core/testing';
import { Container, ContainerModule } from 'inversify';
import { CLOCK, LOGGER, silentLogger, systemClock } from '@calyx/core';
import { ResourceClient, datastoreModule } from '@calyx/datastore';
import { createMemoryDatastore } from '@calyx/datastore-memory';
import type { DnsmasqInstance, DnsmasqProgrammer } from '@calyx/dataplane-dnsmasq';
import { DNSMASQ_PROGRAMMER, DhcpAgent, DHCP_AGENT_CONFIG, dhcpAgentConfig } from './index.js';

class FakeDnsmasq {
  applied: DnsmasqInstance[][] = [];
  async apply(d: DnsmasqInstance[]) {
    this.applied.push(d);
    return { changes: 1, durationMs: 0 };
  }
  /** What the programmer says should serve and does not. */
  down: string[] = [];
  notRunning() {
    return this.down;
  }
  pids() {
    return new Map<string, number>();
  }
  invalidate() {}
  async watch(signal: AbortSignal) {
    await new Promise<void>((r) => signal.addEventListener('abort', () => r(), { once: true }));
  }
  close() {}
}

describe('DhcpAgent', () => {
  it('serves this host’s ports only, from a complete view, and follows changes', async () => {
    const store = createMemoryDatastore();
    const client = new ResourceClient(store);
    await client.create('Network', { id: 'n1', mtu: 1450 });
    await client.create('Subnet', { id: 's1', networkId: 'n1', cidr: '10.65.0.0/24' });
    await client.create('Endpoint', {
      id: 'mine',
      host: 'h1',
      networkId: 'n1',
      mac: 'fa:16:3e:00:00:01',
      fixedIps: [{ subnetId: 's1', ipAddress: '10.65.0.10' }],
    });
    await client.create('Endpoint', {
      id: 'theirs',
      host: 'h2',
      networkId: 'n1',
      mac: 'fa:16:3e:00:00:02',
      fixedIps: [{ subnetId: 's1', ipAddress: '10.65.0.11' }],
    });
    const fake = new FakeDnsmasq();
    const c = new Container();
    c.load(
      new ContainerModule(({ bind }) => {
        bind(LOGGER).toConstantValue(silentLogger);
        bind(CLOCK).toConstantValue(systemClock);
        bind(DHCP_AGENT_CONFIG).toConstantValue(
          dhcpAgentConfig({ hostname: 'h1', stateDir: '/tmp/unused', resyncIntervalMs: 0 }),
        );
        bind(DNSMASQ_PROGRAMMER).toConstantValue(fake as unknown as DnsmasqProgrammer);
        bind(DhcpAgent).toSelf();
      }),
      datastoreModule(store),
    );
    const agent = c.get(DhcpAgent);
    await agent.start();
    expect(fake.applied).toHaveLength(1);
    const [inst] = fake.applied[0]!;
    expect(inst).toMatchObject({ name: 'calyx', interfaceName: 'ns-calyx' });
    expect(inst!.hosts.map((h) => h.ip)).toEqual(['10.65.0.10']);
    expect(inst!.subnets[0]).toMatchObject({ gateway: '10.65.0.1', mtu: 1450 });
    await client.create('Endpoint', {
      id: 'new',
      host: 'h1',
      networkId: 'n1',
      mac: 'fa:16:3e:00:00:03',
      fixedIps: [{ subnetId: 's1', ipAddress: '10.65.0.12' }],
    });
    await eventually(() => fake.applied.length === 2, { what: 'the new port applied' });
    expect(fake.applied.at(-1)![0]!.hosts.map((h) => h.ip)).toEqual(['10.65.0.10', '10.65.0.12']);
    // Ready while everything it runs serves; not while a dnsmasq is down, and says which.
    expect(agent.ready()).toEqual({ ok: true, reasons: [] });
    fake.down = ['calyx'];
    expect(agent.ready()).toEqual({ ok: false, reasons: ['dnsmasq calyx is not running'] });
    await agent.close();
    await store.close();
  });
});

describe('calyx-dhcp-agent settings', () => {
  it('accepts the documented example file (docs/deploy/dhcp-agent.yaml)', async () => {
    const { loadConfig } = await import('@calyx/config');
    const { fileURLToPath } = await import('node:url');
    const { dhcpAgentSettingsSchema, dhcpAgentConfigFromSettings } = await import('./index.js');
    const s = await loadConfig(dhcpAgentSettingsSchema, {
      file: fileURLToPath(new URL('../../../docs/deploy/dhcp-agent.yaml', import.meta.url)),
      defaults: { hostname: 'compute-1' },
    });
    expect(dhcpAgentConfigFromSettings(s)).toMatchObject({
      hostname: 'compute-1',
      layout: 'per-host',
      health: { host: '127.0.0.1', port: 9098 },
    });
  });
});

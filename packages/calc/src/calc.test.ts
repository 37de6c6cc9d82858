import { describe, expect, it } from 'vitest';
import { parseResource, type InputOf, type Kind, type ResourceOf } from '@calyx/model';
import { computeBgp, computeDhcp, computeRoutes, emptyView, type ResourceView } from './index.js';

type Mutable = {
  -readonly [K in keyof ResourceView]: ResourceView[K] extends ReadonlyMap<infer A, infer B>
    ? Map<A, B>
    : ResourceView[K];
};

function view(): Mutable {
  return emptyView() as Mutable;
}
const r = <K extends Kind>(kind: K, input: InputOf<K>): ResourceOf<K> => parseResource(kind, input);

function deployment(opts: { mesh: boolean }) {
  const v = view();
  v.bgpConfiguration = r('BgpConfiguration', {
    name: 'default',
    nodeToNodeMesh: opts.mesh,
    connectRetrySeconds: 1,
  });
  for (const [name, ip, rr] of [
    ['compute-1', '172.31.0.1', null],
    ['compute-2', '172.31.0.2', null],
    ['rr-1', '172.31.0.3', '1.0.0.1'],
  ] as const) {
    v.hosts.set(
      name,
      r('Host', {
        name,
        ipv4Address: ip,
        ipv6Address: `fd00:fab::${ip.split('.')[3]}`,
        routeReflectorClusterId: rr,
      }),
    );
  }
  v.ipPools.set('public', r('IpPool', { name: 'public', cidr: '203.0.113.0/24', advertise: true }));
  v.ipPools.set('private', r('IpPool', { name: 'private', cidr: '10.65.0.0/16' }));
  v.ipPools.set(
    'old-public',
    r('IpPool', { name: 'old-public', cidr: '198.51.100.0/24', advertise: true, disabled: true }),
  );
  v.bgpPeers.set(
    'edge',
    r('BgpPeer', {
      name: 'edge',
      peerIp: '172.31.0.254',
      asNumber: 65000,
      role: 'edge',
      password: 'edge-secret',
    }),
  );
  return v;
}

const summary = (v: ResourceView, host: string) =>
  computeBgp(v, host)!.peers.map(
    (p) =>
      `${p.name}/${p.family} ${p.neighborAddress} as${p.peerAs}${p.routeReflectorClient ? ' rr-client' : ''} ${p.export.kind}${p.export.kind === 'prefixes' ? `[${p.export.prefixes.join(',')}]` : ''}`,
  );

describe('computeBgp', () => {
  it('meshes every host with every other one, and peers every host with a global edge peer', () => {
    const v = deployment({ mesh: true });
    expect(summary(v, 'compute-1')).toEqual([
      'node-compute-2/4 172.31.0.2 as64512 endpoints',
      'node-compute-2/6 fd00:fab::2 as64512 endpoints',
      'node-rr-1/4 172.31.0.3 as64512 endpoints',
      'node-rr-1/6 fd00:fab::3 as64512 endpoints',
      'peer-edge/4 172.31.0.254 as65000 prefixes[203.0.113.0/24]',
    ]);
    const bgp = computeBgp(v, 'compute-1')!;
    expect(bgp).toMatchObject({
      routerId: '172.31.0.1',
      endpointRouteProtocol: 80,
      timers: { connectRetrySeconds: 1 },
    });
    expect(bgp.peers.find((p) => p.name === 'peer-edge')).toMatchObject({
      password: 'edge-secret',
      localAddress: '172.31.0.1',
      acceptDefault: true,
    });
    // A reflector keeps its clients in both modes (switching the mesh off changes nothing on it).
    expect(summary(v, 'rr-1')).toEqual(summary(deployment({ mesh: false }), 'rr-1'));
  });

  it('without the mesh, hosts peer only with reflectors and reflectors take every host as a client', () => {
    const v = deployment({ mesh: false });
    expect(summary(v, 'compute-2')).toEqual([
      'node-rr-1/4 172.31.0.3 as64512 endpoints',
      'node-rr-1/6 fd00:fab::3 as64512 endpoints',
      'peer-edge/4 172.31.0.254 as65000 prefixes[203.0.113.0/24]',
    ]);
    expect(summary(v, 'rr-1')).toEqual([
      'node-compute-1/4 172.31.0.1 as64512 rr-client endpoints-and-reflected',
      'node-compute-1/6 fd00:fab::1 as64512 rr-client endpoints-and-reflected',
      'node-compute-2/4 172.31.0.2 as64512 rr-client endpoints-and-reflected',
      'node-compute-2/6 fd00:fab::2 as64512 rr-client endpoints-and-reflected',
      'peer-edge/4 172.31.0.254 as65000 prefixes[203.0.113.0/24]',
    ]);
    expect(computeBgp(v, 'rr-1')!.peers[0]!.clusterId).toBe('1.0.0.1');
  });

  it('applies per-host peers only to their host, lets explicit peers replace computed sessions, and never peers with itself', () => {
    const v = deployment({ mesh: true });
    v.bgpPeers.set(
      'tor',
      r('BgpPeer', {
        name: 'tor',
        host: 'compute-2',
        peerIp: '172.31.0.250',
        asNumber: 65100,
        pools: ['private'],
      }),
    );
    v.bgpPeers.set(
      'rr-override',
      r('BgpPeer', {
        name: 'rr-override',
        peerIp: '172.31.0.3',
        asNumber: 64512,
        role: 'route-reflector',
      }),
    );
    v.bgpPeers.set(
      'self',
      r('BgpPeer', { name: 'self', host: 'compute-1', peerIp: '172.31.0.1', asNumber: 64512 }),
    );
    expect(
      summary(v, 'compute-1').filter(
        (s) => s.includes('172.31.0.3') || s.includes('172.31.0.250') || s.includes(' 172.31.0.1 '),
      ),
    ).toEqual(['peer-rr-override/4 172.31.0.3 as64512 endpoints']);
    expect(summary(v, 'compute-2')).toContain('peer-tor/4 172.31.0.250 as65100 endpoints');
  });

  it('is null for a host without a Host resource', () => {
    expect(computeBgp(deployment({ mesh: true }), 'unknown')).toBeNull();
  });
});

describe('computeRoutes', () => {
  it('routes admin-up local endpoints (fixed IPs and single-address pairs) and lists their gateways', () => {
    const v = view();
    v.subnets.set('s4', r('Subnet', { id: 's4', networkId: 'n', cidr: '10.65.0.0/24' }));
    v.subnets.set('s6', r('Subnet', { id: 's6', networkId: 'n', cidr: '2001:db8:65::/64' }));
    const ep = (id: string, host: string, ip: string, extra: Partial<InputOf<'Endpoint'>> = {}) =>
      v.endpoints.set(
        id,
        r('Endpoint', {
          id,
          host,
          networkId: 'n',
          mac: 'fa:16:3e:00:00:01',
          fixedIps: [{ subnetId: 's4', ipAddress: ip }],
          ...extra,
        }),
      );
    ep('a-1', 'compute-1', '10.65.0.10', {
      allowedAddressPairs: [{ ipAddress: '10.65.0.100' }, { ipAddress: '10.66.0.0/24' }],
    });
    ep('b-1', 'compute-1', '10.65.0.11', { adminStateUp: false });
    ep('c-1', 'compute-2', '10.65.0.12');
    v.endpoints.set(
      'd-1',
      r('Endpoint', {
        id: 'd-1',
        host: 'compute-1',
        networkId: 'n',
        mac: 'fa:16:3e:00:00:04',
        fixedIps: [{ subnetId: 's6', ipAddress: '2001:db8:65::4' }],
      }),
    );
    expect(computeRoutes(v, 'compute-1')).toEqual({
      endpoints: [
        {
          interfaceName: 'tapa-1',
          mac: 'fa:16:3e:00:00:01',
          addresses: ['10.65.0.10', '10.65.0.100'],
        },
        { interfaceName: 'tapd-1', mac: 'fa:16:3e:00:00:04', addresses: ['2001:db8:65::4'] },
      ],
      gateways: ['10.65.0.1', '2001:db8:65::1'],
    });
  });
});

describe('computeDhcp', () => {
  const setup = () => {
    const v = view();
    v.networks.set('n1', r('Network', { id: 'n1', mtu: 1450 }));
    v.networks.set('n2', r('Network', { id: 'n2' }));
    v.subnets.set(
      's1',
      r('Subnet', {
        id: 's1',
        networkId: 'n1',
        cidr: '10.65.0.0/24',
        dnsServers: ['10.0.0.53'],
        hostRoutes: [{ destination: '10.99.0.0/16', nexthop: '10.65.0.254' }],
      }),
    );
    v.subnets.set('s2', r('Subnet', { id: 's2', networkId: 'n2', cidr: '10.66.0.0/24' }));
    v.subnets.set(
      's3',
      r('Subnet', { id: 's3', networkId: 'n2', cidr: '10.67.0.0/24', enableDhcp: false }),
    );
    v.subnets.set('s6', r('Subnet', { id: 's6', networkId: 'n1', cidr: 'fd00::/64' }));
    v.subnets.set('s9', r('Subnet', { id: 's9', networkId: 'n9', cidr: '10.69.0.0/24' }));
    const ep = (id: string, host: string, networkId: string, ips: [string, string][], name = '') =>
      v.endpoints.set(
        id,
        r('Endpoint', {
          id,
          host,
          networkId,
          name,
          mac: 'fa:16:3e:00:00:01',
          fixedIps: ips.map(([subnetId, ipAddress]) => ({ subnetId, ipAddress })),
        }),
      );
    ep(
      'a',
      'h1',
      'n1',
      [
        ['s1', '10.65.0.10'],
        ['s6', 'fd00::10'],
      ],
      'Web Server #1',
    );
    ep('b', 'h1', 'n2', [
      ['s2', '10.66.0.10'],
      ['s3', '10.67.0.10'],
    ]);
    ep('c', 'h2', 'n1', [['s1', '10.65.0.11']]);
    return v;
  };

  it('serves the IPv4 DHCP subnets of local networks with a lease per local address, in one dnsmasq', () => {
    const [inst, ...rest] = computeDhcp(setup(), 'h1');
    expect(rest).toEqual([]);
    expect(inst!.interfaceName).toBe('ns-calyx');
    // Every DHCP subnet is declared per host (no restart when a port lands on a new network).
    expect(inst!.subnets.map((s) => s.subnetId)).toEqual(['s1', 's2', 's9']);
    expect(inst!.subnets[0]).toEqual({
      tag: 'sub-s1',
      subnetId: 's1',
      network: '10.65.0.0',
      prefixLength: 24,
      gateway: '10.65.0.1',
      dnsServers: ['10.0.0.53'],
      mtu: 1450,
      classlessRoutes: [
        { destination: '10.99.0.0/16', nexthop: '10.65.0.254' },
        { destination: '0.0.0.0/0', nexthop: '10.65.0.1' },
      ],
    });
    expect(inst!.hosts).toEqual([
      { mac: 'fa:16:3e:00:00:01', ip: '10.65.0.10', hostname: 'web-server--1', subnetId: 's1' },
      { mac: 'fa:16:3e:00:00:01', ip: '10.66.0.10', hostname: 'host-10-66-0-10', subnetId: 's2' },
    ]);
  });

  it('gives each network its own dnsmasq and ns- interface in per-network layout', () => {
    const insts = computeDhcp(setup(), 'h1', 'per-network');
    expect(insts.map((i) => [i.name, i.interfaceName, i.subnets.map((s) => s.subnetId)])).toEqual([
      ['n1', 'ns-n1', ['s1']],
      ['n2', 'ns-n2', ['s2']],
    ]);
    expect(computeDhcp(setup(), 'h3')).toEqual([]);
  });
});

import { describe, expect, it } from 'vitest';
import {
  assertEndpointAddresses,
  assertNoSubnetOverlap,
  keyOf,
  keys,
  parseKey,
  parseResource,
  safeParseResource,
  ValidationError,
  KeyLayoutError,
  KIND_NAMES,
  type Subnet,
} from './index.js';

function errorOf(fn: () => unknown): ValidationError {
  try {
    fn();
  } catch (e) {
    if (e instanceof ValidationError) return e;
    throw e;
  }
  throw new Error('expected a ValidationError');
}

describe('Subnet', () => {
  it('names resource, field and bad value when the gateway is outside the CIDR', () => {
    const e = errorOf(() =>
      parseResource('Subnet', {
        id: 's1',
        networkId: 'n1',
        cidr: '10.0.0.0/24',
        gatewayIp: '10.0.1.1',
      }),
    );
    expect(e.message).toBe('Subnet s1: gatewayIp 10.0.1.1 is outside 10.0.0.0/24');
    expect(e.kind).toBe('Subnet');
    expect(e.resourceId).toBe('s1');
    expect(e.issues).toEqual([
      { field: 'gatewayIp', value: '10.0.1.1', problem: 'is outside 10.0.0.0/24' },
    ]);
  });

  it('fills the gateway and allocation pools the way Neutron does', () => {
    const s = parseResource('Subnet', { id: 's1', networkId: 'n1', cidr: '10.0.0.0/24' });
    expect(s.gatewayIp).toBe('10.0.0.1');
    expect(s.allocationPools).toEqual([{ start: '10.0.0.2', end: '10.0.0.254' }]);
    expect(s.ipVersion).toBe(4);
    expect(s.enableDhcp).toBe(true);
    const mid = parseResource('Subnet', {
      id: 's2',
      networkId: 'n1',
      cidr: '10.0.1.0/24',
      gatewayIp: '10.0.1.100',
    });
    expect(mid.allocationPools).toEqual([
      { start: '10.0.1.1', end: '10.0.1.99' },
      { start: '10.0.1.101', end: '10.0.1.254' },
    ]);
    const v6 = parseResource('Subnet', {
      id: 's6',
      networkId: 'n1',
      cidr: '2001:DB8:1::/64',
      gatewayIp: null,
    });
    expect(v6.cidr).toBe('2001:db8:1::/64');
    expect(v6.gatewayIp).toBeNull();
    expect(v6.allocationPools).toEqual([
      { start: '2001:db8:1::1', end: '2001:db8:1:0:ffff:ffff:ffff:ffff' },
    ]);
  });

  it('rejects pools outside the CIDR, reversed, overlapping, holding the gateway', () => {
    const e = errorOf(() =>
      parseResource('Subnet', {
        id: 's1',
        networkId: 'n1',
        cidr: '10.0.0.0/24',
        gatewayIp: '10.0.0.1',
        allocationPools: [
          { start: '10.0.0.10', end: '10.0.0.20' },
          { start: '10.0.0.15', end: '10.0.0.30' },
          { start: '10.0.0.50', end: '10.0.0.40' },
          { start: '10.0.0.100', end: '10.0.1.5' },
          { start: '10.0.0.1', end: '10.0.0.5' },
          { start: '10.0.0.200', end: '10.0.0.255' },
        ],
      }),
    );
    expect(e.issues.map((i) => `${i.field}: ${i.problem}`)).toEqual([
      'allocationPools[2].end: is before start 10.0.0.50',
      'allocationPools[3].end: is outside 10.0.0.0/24',
      'allocationPools[5].end: is a reserved address of 10.0.0.0/24',
      'allocationPools[1]: overlaps pool 10.0.0.10-10.0.0.20',
      'gatewayIp: is inside allocation pool 10.0.0.1-10.0.0.5',
    ]);
  });

  it('rejects host bits, tiny subnets, mixed families, unknown fields', () => {
    expect(
      errorOf(() => parseResource('Subnet', { id: 's1', networkId: 'n1', cidr: '10.0.0.1/24' }))
        .message,
    ).toBe('Subnet s1: cidr 10.0.0.1/24 has host bits set (network is 10.0.0.0/24)');
    expect(
      errorOf(() => parseResource('Subnet', { id: 's1', networkId: 'n1', cidr: '10.0.0.0/31' }))
        .message,
    ).toMatch(/too small/);
    expect(
      errorOf(() =>
        parseResource('Subnet', {
          id: 's1',
          networkId: 'n1',
          cidr: '10.0.0.0/24',
          dnsServers: ['::1'],
        }),
      ).message,
    ).toBe('Subnet s1: dnsServers[0] ::1 is not an IPv4 address');
    expect(
      errorOf(() =>
        parseResource('Subnet', { id: 's1', networkId: 'n1', cidr: '10.0.0.0/24', colour: 'red' }),
      ).message,
    ).toBe('Subnet s1: colour red is not a field of Subnet');
    expect(errorOf(() => parseResource('Subnet', { id: 's1', cidr: '10.0.0.0/24' })).message).toBe(
      'Subnet s1: networkId (missing) is missing',
    );
  });

  it('rejects overlapping subnets in one deployment', () => {
    const a = parseResource('Subnet', { id: 'a', networkId: 'n1', cidr: '10.0.0.0/16' });
    const b = parseResource('Subnet', { id: 'b', networkId: 'n2', cidr: '10.0.5.0/24' });
    const c = parseResource('Subnet', { id: 'c', networkId: 'n2', cidr: '10.1.0.0/24' });
    expect(() => assertNoSubnetOverlap(b, [a])).toThrow(
      'Subnet b: cidr 10.0.5.0/24 overlaps subnet a (10.0.0.0/16)',
    );
    expect(() => assertNoSubnetOverlap(c, [a, b])).not.toThrow();
    expect(() => assertNoSubnetOverlap(a, [a])).not.toThrow();
  });
});

describe('Endpoint', () => {
  const base = {
    id: 'c2930496-e8aa-4f1c-9c55-5b1b0b3b8a11',
    networkId: 'n1',
    mac: '00:61:FE:ED:CA:FE',
  };

  it('derives the tap name, normalises MAC and addresses, defaults the rest', () => {
    const e = parseResource('Endpoint', {
      ...base,
      host: 'compute-1',
      fixedIps: [{ subnetId: 's6', ipAddress: '2001:DB8::0:5' }],
    });
    expect(e.interfaceName).toBe('tapc2930496-e8');
    expect(e.mac).toBe('00:61:fe:ed:ca:fe');
    expect(e.fixedIps[0]!.ipAddress).toBe('2001:db8::5');
    expect(e.adminStateUp).toBe(true);
    expect(e.securityGroupIds).toEqual([]);
    expect(keyOf('Endpoint', e)).toBe(
      '/calyx/v1/host/compute-1/endpoint/c2930496-e8aa-4f1c-9c55-5b1b0b3b8a11',
    );
    expect(keyOf('Endpoint', { ...e, host: null })).toBe(
      '/calyx/v1/unbound/endpoint/c2930496-e8aa-4f1c-9c55-5b1b0b3b8a11',
    );
  });

  it('rejects bad interface names, multicast MACs and duplicate addresses', () => {
    expect(
      errorOf(() => parseResource('Endpoint', { ...base, interfaceName: 'tap-much-too-long-name' }))
        .message,
    ).toMatch(/interfaceName tap-much-too-long-name is not a valid interface name/);
    expect(
      errorOf(() => parseResource('Endpoint', { ...base, interfaceName: 'tap;rm -rf' })).issues[0]!
        .field,
    ).toBe('interfaceName');
    expect(
      errorOf(() => parseResource('Endpoint', { ...base, mac: '01:00:5e:00:00:01' })).message,
    ).toMatch(/mac 01:00:5e:00:00:01 is a multicast MAC/);
    expect(errorOf(() => parseResource('Endpoint', { ...base, mac: 'nope' })).message).toMatch(
      /mac nope is not a MAC address/,
    );
    const dup = errorOf(() =>
      parseResource('Endpoint', {
        ...base,
        fixedIps: [
          { subnetId: 's', ipAddress: '10.0.0.5' },
          { subnetId: 's', ipAddress: '10.0.0.5' },
        ],
      }),
    );
    expect(dup.message).toMatch(/fixedIps\[1\]\.ipAddress 10\.0\.0\.5 is listed twice/);
  });

  it('checks addresses against their subnets', () => {
    const s = parseResource('Subnet', { id: 's1', networkId: 'n1', cidr: '10.0.0.0/24' });
    const other = parseResource('Subnet', { id: 's2', networkId: 'n2', cidr: '10.0.9.0/24' });
    const subnets = new Map<string, Subnet>([
      [s.id, s],
      [other.id, other],
    ]);
    const ep = (ip: string, subnetId = 's1') =>
      parseResource('Endpoint', { ...base, fixedIps: [{ subnetId, ipAddress: ip }] });
    expect(() => assertEndpointAddresses(ep('10.0.0.7'), subnets)).not.toThrow();
    expect(() => assertEndpointAddresses(ep('10.0.1.7'), subnets)).toThrow(
      /fixedIps\[0\]\.ipAddress 10\.0\.1\.7 is outside 10\.0\.0\.0\/24/,
    );
    expect(() => assertEndpointAddresses(ep('10.0.0.1'), subnets)).toThrow(/is the gateway/);
    expect(() => assertEndpointAddresses(ep('10.0.0.255'), subnets)).toThrow(
      /is a reserved address/,
    );
    expect(() => assertEndpointAddresses(ep('10.0.9.7', 's2'), subnets)).toThrow(
      /belongs to network n2, not n1/,
    );
    expect(() => assertEndpointAddresses(ep('10.0.0.7', 'nope'), subnets)).toThrow(
      /is not an existing subnet/,
    );
  });
});

describe('SecurityGroup rules', () => {
  const rule = (r: object) =>
    parseResource('SecurityGroup', { id: 'sg1', rules: [{ direction: 'ingress', ...r }] })
      .rules[0]!;

  it('normalises protocols by name or number, single ports and IPv6 icmp', () => {
    expect(rule({ protocol: 'TCP', portRangeMin: 22 })).toMatchObject({
      protocol: 'tcp',
      portRangeMin: 22,
      portRangeMax: 22,
    });
    expect(rule({ protocol: 17 }).protocol).toBe('udp');
    expect(rule({ protocol: '132' }).protocol).toBe('sctp');
    expect(rule({ protocol: 253 }).protocol).toBe('253');
    expect(rule({ protocol: 'any' }).protocol).toBeNull();
    expect(rule({ ethertype: 'IPv6', protocol: 'icmp', icmpType: 128 }).protocol).toBe('icmpv6');
    expect(rule({ protocol: 'ipv6-icmp', ethertype: 'IPv6' }).protocol).toBe('icmpv6');
    expect(rule({ remoteIpPrefix: '10.1.2.3/16' }).remoteIpPrefix).toBe('10.1.0.0/16');
  });

  it.each([
    [
      { protocol: 'tcp', portRangeMin: 100, portRangeMax: 50 },
      'rules[0].portRangeMax 50 is below portRangeMin 100',
    ],
    [
      { protocol: 'icmp', portRangeMin: 1 },
      'rules[0].portRangeMin 1 needs protocol tcp, udp, sctp, udplite or dccp (protocol is icmp)',
    ],
    [{ protocol: 'tcp', portRangeMin: 0 }, 'rules[0].portRangeMin 0 must be a port in 1..65535'],
    [
      { protocol: 'tcp', portRangeMin: 70000 },
      'rules[0].portRangeMin 70000 must be a port in 1..65535',
    ],
    [
      { protocol: 'tcp', icmpType: 8 },
      'rules[0].icmpType 8 needs protocol icmp or icmpv6 (protocol is tcp)',
    ],
    [{ protocol: 'icmp', icmpCode: 0 }, 'rules[0].icmpCode 0 needs icmpType'],
    [
      { protocol: 'bogus' },
      'rules[0].protocol bogus is not a known protocol name (use its number)',
    ],
    [{ protocol: 300 }, 'rules[0].protocol 300 is not a protocol number in 0..255'],
    [
      { remoteIpPrefix: '10.0.0.0/8', remoteGroupId: 'sg2' },
      'rules[0].remoteGroupId sg2 cannot be combined with remoteIpPrefix',
    ],
    [
      { ethertype: 'IPv6', remoteIpPrefix: '10.0.0.0/8' },
      'rules[0].remoteIpPrefix 10.0.0.0/8 is not an IPv6 prefix',
    ],
    [{ direction: 'sideways' }, "rules[0].direction sideways must be 'ingress' or 'egress'"],
  ])('rejects %j', (r, message) => {
    expect(errorOf(() => rule(r)).message).toBe(`SecurityGroup sg1: ${message}`);
  });
});

describe('BGP resources and pools', () => {
  it('validates hosts, peers and pools', () => {
    expect(parseResource('Host', { name: 'compute-1', ipv4Address: '172.16.0.1' })).toMatchObject({
      ipv6Address: null,
      routeReflectorClusterId: null,
    });
    expect(errorOf(() => parseResource('Host', { name: 'h', ipv4Address: '::1' })).message).toBe(
      'Host h: ipv4Address ::1 is not an IPv4 address',
    );
    expect(errorOf(() => parseResource('Host', { name: 'h' })).message).toMatch(
      /needs an IPv4 or IPv6 BGP address/,
    );
    expect(
      errorOf(() =>
        parseResource('BgpPeer', {
          name: 'edge',
          peerIp: '172.16.0.9',
          asNumber: 65000,
          password: 'a"b',
        }),
      ).issues[0]!.field,
    ).toBe('password');
    expect(parseResource('BgpConfiguration', { name: 'default' })).toMatchObject({
      asNumber: 64512,
      nodeToNodeMesh: true,
    });
    expect(parseResource('IpPool', { name: 'p', cidr: '10.0.0.0/16' }).blockSize).toBe(26);
    expect(parseResource('IpPool', { name: 'p6', cidr: 'fd00::/48' }).blockSize).toBe(122);
    expect(
      errorOf(() => parseResource('IpPool', { name: 'p', cidr: '10.0.0.0/24', blockSize: 20 }))
        .message,
    ).toBe('IpPool p: blockSize 20 must be in 24..32 for 10.0.0.0/24');
  });
});

describe('key layout', () => {
  it('builds and parses every kind of key', () => {
    const cases: [string, object][] = [
      [keys.network('n1'), { kind: 'Network', id: 'n1' }],
      [keys.subnet('s1'), { kind: 'Subnet', id: 's1' }],
      [keys.securityGroup('sg'), { kind: 'SecurityGroup', id: 'sg' }],
      [keys.endpoint('h1', 'e1'), { kind: 'Endpoint', host: 'h1', id: 'e1' }],
      [keys.endpoint(null, 'e1'), { kind: 'Endpoint', host: null, id: 'e1' }],
      [keys.endpointLocation('e1'), { kind: 'EndpointLocation', id: 'e1' }],
      [keys.host('h1'), { kind: 'Host', name: 'h1' }],
      [keys.bgpConfiguration('default'), { kind: 'BgpConfiguration', name: 'default' }],
      [keys.bgpPeer('edge'), { kind: 'BgpPeer', name: 'edge' }],
      [keys.ipPool('p'), { kind: 'IpPool', name: 'p' }],
      [keys.ipamBlock('10.0.0.64/26'), { kind: 'IpamBlock', cidr: '10.0.0.64/26' }],
      [keys.ipamBlock('fd00::40/122'), { kind: 'IpamBlock', cidr: 'fd00::40/122' }],
      [keys.ipamHandle('port:e1'), { kind: 'IpamHandle', handleId: 'port:e1' }],
      [
        keys.blockAffinity('h1', '10.0.0.0/26'),
        { kind: 'BlockAffinity', host: 'h1', cidr: '10.0.0.0/26' },
      ],
      [keys.endpointStatus('h1', 'e1'), { kind: 'EndpointStatus', host: 'h1', id: 'e1' }],
      [keys.hostStatus('h1'), { kind: 'HostStatus', host: 'h1' }],
    ];
    for (const [key, parsed] of cases) expect(parseKey(key)).toEqual(parsed);
    expect(keys.endpoint('h1', 'e1')).toBe('/calyx/v1/host/h1/endpoint/e1');
  });

  it.each([
    '/other/v1/network/n1',
    '/calyx/v1/network/',
    '/calyx/v1/network/n1/extra',
    '/calyx/v1/host/h1/weird/e1',
    '/calyx/v1/what/x',
    '/calyx/v1/network/bad id',
  ])('rejects %s', (key) => {
    expect(() => parseKey(key)).toThrow(KeyLayoutError);
  });

  it('every kind has a schema that rejects garbage with a typed error', () => {
    for (const kind of KIND_NAMES) {
      const r = safeParseResource(kind, 'garbage');
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.error.message).toMatch(new RegExp(`^${kind}: must be an object`));
    }
  });
});

describe('stored form', () => {
  it('re-validates to itself for every kind (what is written can be read back)', () => {
    const samples: [Parameters<typeof parseResource>[0], unknown][] = [
      ['Network', { id: 'n1' }],
      [
        'Subnet',
        {
          id: 's1',
          networkId: 'n1',
          cidr: '10.0.0.0/24',
          dnsServers: ['10.0.0.53'],
          hostRoutes: [{ destination: '10.9.0.0/16', nexthop: '10.0.0.9' }],
        },
      ],
      ['Subnet', { id: 's6', networkId: 'n1', cidr: 'fd00::/64' }],
      [
        'Endpoint',
        {
          id: 'e1',
          host: 'h1',
          networkId: 'n1',
          mac: 'AA:BB:CC:00:00:01',
          fixedIps: [{ subnetId: 's1', ipAddress: '10.0.0.5' }],
          allowedAddressPairs: [{ ipAddress: '10.0.0.99' }],
        },
      ],
      ['EndpointLocation', { id: 'e1', host: null }],
      [
        'SecurityGroup',
        {
          id: 'sg',
          rules: [
            { direction: 'ingress', protocol: 'tcp', portRangeMin: 22 },
            { direction: 'egress', ethertype: 'IPv6', protocol: 'icmp' },
          ],
        },
      ],
      ['Host', { name: 'h1', ipv4Address: '172.16.0.1', routeReflectorClusterId: '1.0.0.1' }],
      ['BgpConfiguration', { name: 'default' }],
      [
        'BgpPeer',
        { name: 'edge', peerIp: '172.16.0.254', asNumber: 65000, role: 'edge', password: 'secret' },
      ],
      ['IpPool', { name: 'pub', cidr: '203.0.113.0/24', advertise: true }],
      [
        'IpamBlock',
        {
          cidr: '10.0.0.0/30',
          pool: 'p',
          affinity: 'h1',
          allocations: [null, 0, null, null],
          unallocated: [0, 2, 3],
          attributes: [{ handleId: 'port:e1' }],
          sequenceNumber: 1,
        },
      ],
      ['IpamHandle', { handleId: 'port:e1', blocks: { '10.0.0.0/30': 1 } }],
      ['BlockAffinity', { host: 'h1', cidr: '10.0.0.0/26', state: 'confirmed' }],
      [
        'EndpointStatus',
        { endpointId: 'e1', host: 'h1', status: 'up', updatedAt: '2026-11-26T10:00:00.000Z' },
      ],
      [
        'HostStatus',
        {
          host: 'h1',
          startedAt: '2026-11-26T10:00:00.000Z',
          updatedAt: '2026-11-26T10:00:01.000Z',
          inSync: true,
        },
      ],
    ];
    expect(new Set(samples.map(([k]) => k))).toEqual(new Set(KIND_NAMES));
    for (const [kind, input] of samples) {
      const once = parseResource(kind, input);
      const twice = parseResource(kind, JSON.parse(JSON.stringify(once)));
      expect(twice).toEqual(once);
    }
  });
});

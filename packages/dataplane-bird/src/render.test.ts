import { describe, expect, it } from 'vitest';
import {
  BirdConfigError,
  parseRouteCount,
  parseShowProtocols,
  protocolName,
  renderBirdConfig,
  type BirdConfig,
  type BirdPeer,
} from './index.js';

const peer = (p: Partial<BirdPeer>): BirdPeer => ({
  name: 'compute-2',
  neighborAddress: '172.31.0.2',
  localAs: 64512,
  peerAs: 64512,
  direct: true,
  routeReflectorClient: false,
  gracefulRestart: true,
  family: 4,
  export: { kind: 'endpoints' },
  import: 'all',
  ...p,
});
const config = (peers: BirdPeer[], extra: Partial<BirdConfig> = {}): BirdConfig => ({
  routerId: '172.31.0.1',
  logLevel: 'info',
  endpointRouteProtocol: 80,
  installRoutes: true,
  timers: { connectRetrySeconds: 1, holdSeconds: 9, gracefulRestartSeconds: 120 },
  peers,
  ...extra,
});

describe('renderBirdConfig', () => {
  it('learns endpoint routes by route protocol and installs BGP routes into the kernel', () => {
    const text = renderBirdConfig(config([peer({})]));
    expect(text).toContain('router id 172.31.0.1;');
    expect(text).toContain(
      'import filter { if krt_source = 80 && net.len > 0 then accept; reject; };',
    );
    expect(text).toContain('export filter { if source = RTS_BGP then accept; reject; };');
    expect(text).toContain('  learn;');
    expect(text).toContain('protocol bgp bgp4_compute_2_');
    expect(text).toContain('  neighbor 172.31.0.2 as 64512;\n  direct;');
  });

  it('exports only endpoint routes inside the given prefixes to edge peers, and never a default route', () => {
    const text = renderBirdConfig(
      config([
        peer({
          name: 'edge',
          neighborAddress: '172.31.0.254',
          peerAs: 65000,
          password: 's3cret',
          export: { kind: 'prefixes', prefixes: ['203.0.113.0/24', '2001:db8:f00::/48'] },
        }),
      ]),
    );
    expect(text).toContain(
      'export filter { if net.len = 0 then reject; if proto = "kernel4" && net ~ [ 203.0.113.0/24+ ] then accept; reject; };',
    );
    expect(text).toContain('password "s3cret";');
    const none = renderBirdConfig(
      config([peer({ name: 'edge', export: { kind: 'prefixes', prefixes: [] } })]),
    );
    expect(none).toContain('if proto = "kernel4" && false then accept;');
  });

  it('makes a route reflector reflect to its clients with its cluster id', () => {
    const text = renderBirdConfig(
      config(
        [
          peer({
            routeReflectorClient: true,
            clusterId: '1.0.0.1',
            export: { kind: 'endpoints-and-reflected' },
          }),
        ],
        { endpointRouteProtocol: null },
      ),
    );
    expect(text).toContain('  rr client;\n  rr cluster id 1.0.0.1;');
    expect(text).toContain('if source = RTS_BGP then accept;');
    expect(text).toContain('    import none;');
  });

  it('is deterministic and independent of peer order', () => {
    const a = peer({ name: 'a', neighborAddress: '172.31.0.3' });
    const b = peer({ name: 'b', neighborAddress: '172.31.0.4' });
    expect(renderBirdConfig(config([a, b]))).toBe(renderBirdConfig(config([b, a])));
  });

  it.each([
    [{ routerId: 'not-an-ip' }, /router id/],
    [{ peers: [peer({ neighborAddress: '172.31.0.2; protocol x' })] }, /not an IP address/],
    [{ peers: [peer({ password: 'has"quote' })] }, /password/],
    [{ peers: [peer({ peerAs: 0 })] }, /AS number/],
    [{ peers: [peer({ family: 6 })] }, /family 6 does not match/],
    [
      { peers: [peer({ export: { kind: 'prefixes', prefixes: ['10.0.0.0/8 ]; accept;'] } })] },
      /not a prefix/,
    ],
    [{ logFile: '/tmp/x"; include "/etc/shadow' }, /log file/],
    [
      { peers: [peer({ name: 'a-b' }), peer({ name: 'a-b', neighborAddress: '172.31.0.9' })] },
      /two peers/,
    ],
  ])('refuses unsafe or invalid input %#', (extra, message) => {
    expect(() => renderBirdConfig(config([peer({})], extra as Partial<BirdConfig>))).toThrow(
      BirdConfigError,
    );
    expect(() => renderBirdConfig(config([peer({})], extra as Partial<BirdConfig>))).toThrow(
      message,
    );
  });

  it('derives valid, unique protocol names', () => {
    expect(protocolName('bgp4', 'edge')).toBe('bgp4_edge');
    expect(protocolName('bgp4', 'compute-1')).toMatch(/^bgp4_compute_1_[0-9a-f]{6}$/);
    expect(protocolName('bgp4', 'compute-1')).not.toBe(protocolName('bgp4', 'compute_1'));
  });
});

describe('birdc output', () => {
  it('parses show protocols', () => {
    const text = [
      'BIRD 2.0.12 ready.',
      'Name       Proto      Table      State  Since         Info',
      'device1    Device     ---        up     2026-11-26 10:41:15  ',
      'kernel4    Kernel     master4    up     2026-11-26 10:41:15  ',
      'bgp4_edge  BGP        ---        up     2026-11-26 10:41:16  Established   ',
      'bgp4_compute_2_4a759f BGP        ---        start  2026-11-26 10:41:15  Active        Socket: Connection refused',
    ].join('\n');
    const p = parseShowProtocols(text);
    expect(p.map((x) => [x.name, x.state, x.established, x.info])).toEqual([
      ['device1', 'up', false, ''],
      ['kernel4', 'up', false, ''],
      ['bgp4_edge', 'up', true, 'Established'],
      ['bgp4_compute_2_4a759f', 'start', false, 'Active Socket: Connection refused'],
    ]);
  });

  it('parses show route count', () => {
    const counts = parseRouteCount(
      'BIRD 2.0.12 ready.\n3 of 3 routes for 3 networks in table master4\n1 of 1 routes for 1 networks in table master6\nTotal: 4 of 4 routes',
    );
    expect([...counts]).toEqual([
      ['master4', 3],
      ['master6', 1],
    ]);
  });
});

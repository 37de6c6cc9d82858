import { describe, expect, it } from 'vitest';
import { emptyActual, planRoutes, type LinkState, type RoutesDesired } from './plan.js';
import { parseHostRoutes, parseLinks, parseMonitorLine, parseNeighbours } from './read.js';

const opts = { routeProtocol: 80, gatewayInterface: 'calyx-gw' };
const links = (...ls: [string, number, boolean?][]): Map<string, LinkState> =>
  new Map(ls.map(([name, ifindex, up]) => [name, { name, ifindex, up: up ?? true }]));
const desired: RoutesDesired = {
  endpoints: [
    { interfaceName: 'tapa', mac: 'FA:16:3E:00:00:01', addresses: ['10.65.0.10', '2001:DB8::10'] },
    { interfaceName: 'tapb', mac: 'fa:16:3e:00:00:02', addresses: ['10.65.0.11'] },
  ],
  gateways: ['10.65.0.1', '2001:db8::1'],
};

describe('planRoutes', () => {
  it('programs everything from scratch: sysctls, gateway addresses, routes, neighbours, proxy NDP', () => {
    const plan = planRoutes(desired, emptyActual(), links(['tapa', 5], ['tapb', 6]), opts);
    expect(plan.batch).toEqual([
      'address add 10.65.0.1/32 dev calyx-gw',
      'address add 2001:db8::1/128 dev calyx-gw nodad',
      'route replace 10.65.0.10/32 dev tapa scope link proto 80',
      'route replace 2001:db8::10/128 dev tapa proto 80',
      'route replace 10.65.0.11/32 dev tapb scope link proto 80',
      'neigh replace 10.65.0.10 lladdr fa:16:3e:00:00:01 dev tapa nud permanent',
      'neigh replace 2001:db8::10 lladdr fa:16:3e:00:00:01 dev tapa nud permanent',
      'neigh replace 10.65.0.11 lladdr fa:16:3e:00:00:02 dev tapb nud permanent',
      'neigh replace proxy 2001:db8::1 dev tapa',
    ]);
    expect(plan.sysctls).toEqual([
      'net/ipv4/conf/tapa/forwarding=1',
      'net/ipv4/conf/tapa/proxy_arp=1',
      'net/ipv4/neigh/tapa/proxy_delay=0',
      'net/ipv6/conf/tapa/forwarding=1',
      'net/ipv6/conf/tapa/proxy_ndp=1',
      'net/ipv6/neigh/tapa/proxy_delay=0',
      'net/ipv4/conf/tapb/forwarding=1',
      'net/ipv4/conf/tapb/proxy_arp=1',
      'net/ipv4/neigh/tapb/proxy_delay=0',
    ]);
    expect([...plan.status]).toEqual([
      ['tapa', 'programmed'],
      ['tapb', 'programmed'],
    ]);
  });

  it('changes nothing when applied again on its own result', () => {
    const l = links(['tapa', 5], ['tapb', 6]);
    const first = planRoutes(desired, emptyActual(), l, opts);
    const second = planRoutes(desired, first.next, l, opts);
    expect(second.batch).toEqual([]);
    expect(second.sysctls).toEqual([]);
  });

  it('waits for missing or down interfaces and programs nothing for them', () => {
    const plan = planRoutes(desired, emptyActual(), links(['tapb', 6, false]), opts);
    expect(plan.status.get('tapa')).toBe('missing-interface');
    expect(plan.status.get('tapb')).toBe('interface-down');
    expect(plan.batch.filter((l) => l.startsWith('route'))).toEqual([]);
  });

  it('removes what belongs to deleted endpoints, only on interfaces that still exist', () => {
    const l = links(['tapa', 5], ['tapb', 6]);
    const before = planRoutes(desired, emptyActual(), l, opts).next;
    const after = planRoutes(
      { endpoints: [desired.endpoints[0]!], gateways: ['10.65.0.1'] },
      before,
      l,
      opts,
    );
    expect(after.batch).toEqual([
      'route del 10.65.0.11/32 dev tapb proto 80',
      'neigh del 10.65.0.11 dev tapb',
      'neigh del proxy 2001:db8::1 dev tapa',
      'address del 2001:db8::1/128 dev calyx-gw',
    ]);
    // The tap is gone: the kernel removed its routes with it, nothing to delete.
    const gone = planRoutes(
      { endpoints: [desired.endpoints[0]!], gateways: desired.gateways },
      before,
      links(['tapa', 5]),
      opts,
    );
    expect(gone.batch).toEqual([]);
    expect([...gone.next.routes.keys()]).toEqual(['10.65.0.10', '2001:db8::10']);
  });

  it('moves an address to another tap with a replace, and reconfigures a recreated tap', () => {
    const l = links(['tapa', 5], ['tapb', 6]);
    const before = planRoutes(desired, emptyActual(), l, opts).next;
    const moved: RoutesDesired = {
      endpoints: [
        {
          interfaceName: 'tapb',
          mac: 'fa:16:3e:00:00:02',
          addresses: ['10.65.0.11', '10.65.0.10'],
        },
      ],
      gateways: ['10.65.0.1'],
    };
    const plan = planRoutes(moved, before, links(['tapa', 5], ['tapb', 9]), opts);
    expect(plan.batch).toContain('route replace 10.65.0.10/32 dev tapb scope link proto 80');
    expect(plan.batch.filter((l) => l.startsWith('route del'))).toEqual([
      'route del 2001:db8::10/128 dev tapa proto 80',
    ]);
    expect(plan.sysctls.some((s) => s.includes('/tapb/'))).toBe(true);
  });

  it('refuses interface names that could reach a command unsafely', () => {
    expect(() =>
      planRoutes(
        {
          endpoints: [{ interfaceName: 'tap a;reboot', mac: 'fa:16:3e:00:00:01', addresses: [] }],
          gateways: [],
        },
        emptyActual(),
        new Map(),
        opts,
      ),
    ).toThrow(/invalid interface name/);
  });
});

describe('parsers', () => {
  it('reads ip -json output', () => {
    const l = parseLinks(
      '[{"ifindex":5,"ifname":"tapa","flags":["BROADCAST","UP","LOWER_UP"]},{"ifindex":6,"ifname":"tapb","flags":["BROADCAST"]}]',
    );
    expect([...l.values()]).toEqual([
      { name: 'tapa', ifindex: 5, up: true },
      { name: 'tapb', ifindex: 6, up: false },
    ]);
    const routes = parseHostRoutes(
      '[{"dst":"10.0.0.5","dev":"tapa","scope":"link"},{"dst":"2001:db8::5","dev":"tapa"},{"dst":"10.1.0.0/24","dev":"tapa"},{"dst":"10.0.0.6","dev":"eth0"}]',
      (d) => d.startsWith('tap'),
    );
    expect([...routes]).toEqual([
      ['10.0.0.5', 'tapa'],
      ['2001:db8::5', 'tapa'],
    ]);
    const neigh = parseNeighbours(
      '[{"dst":"10.0.0.5","dev":"tapa","lladdr":"FA:16:3e:00:00:01","state":["PERMANENT"]},{"dst":"10.0.0.6","dev":"tapa","lladdr":"fa:16:3e:00:00:02","state":["REACHABLE"]}]',
      () => true,
    );
    expect([...neigh]).toEqual([['tapa|10.0.0.5', 'fa:16:3e:00:00:01']]);
  });

  it('reads ip -o monitor link lines', () => {
    expect(
      parseMonitorLine(
        '3: tapa@tapb: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue state UP group default \\    link/ether 56:a0',
      ),
    ).toEqual({
      deleted: false,
      ifindex: 3,
      name: 'tapa',
      up: true,
    });
    expect(parseMonitorLine('Deleted 2: tapb@NONE: <BROADCAST,MULTICAST> mtu 1500')).toEqual({
      deleted: true,
      ifindex: 2,
      name: 'tapb',
      up: false,
    });
    expect(parseMonitorLine('garbage')).toBeUndefined();
  });
});

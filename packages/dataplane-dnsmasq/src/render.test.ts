import { describe, expect, it } from 'vitest';
import { InvalidNameError } from '@calyx/dataplane';
import {
  peerInterfaceName,
  renderCommandLine,
  renderHostFiles,
  renderOpts,
  validateInstance,
  type DnsmasqInstance,
} from './index.js';

const inst: DnsmasqInstance = {
  name: 'calyx',
  interfaceName: 'ns-calyx',
  subnets: [
    {
      tag: 'sub-a',
      network: '10.65.0.0',
      prefixLength: 24,
      gateway: '10.65.0.1',
      dnsServers: ['10.0.0.53'],
      mtu: 1450,
      classlessRoutes: [
        { destination: '10.99.0.0/16', nexthop: '10.65.0.254' },
        { destination: '0.0.0.0/0', nexthop: '10.65.0.1' },
      ],
    },
    {
      tag: 'sub-b',
      network: '10.66.0.0',
      prefixLength: 20,
      gateway: '10.66.0.1',
      dnsServers: [],
      mtu: 1500,
      classlessRoutes: [],
    },
  ],
  hosts: [{ mac: 'FA:16:3E:00:00:01', ip: '10.65.0.10', hostname: 'web-1' }],
};
const paths = {
  dir: '/s/calyx',
  hosts: '/s/calyx/host',
  addnHosts: '/s/calyx/addn_hosts',
  hostsDir: '/s/calyx/hosts.d',
  namesDir: '/s/calyx/names.d',
  opts: '/s/calyx/opts',
  leases: '/s/calyx/leases',
  pid: '/s/calyx/pid',
  log: '/s/calyx/dnsmasq.log',
};
const opts = {
  domain: 'calyxlocal',
  leaseSeconds: 86400,
  endpointInterfacePattern: 'tap*',
  user: 'nobody',
  logDhcp: false,
};

describe('dnsmasq files', () => {
  it('writes one file per port, without set: tags (dnsmasq 2.90 crashes on SIGHUP with them)', () => {
    const files = renderHostFiles(inst, 'calyxlocal');
    expect([...files.dhcp]).toEqual([
      ['fa-16-3e-00-00-01', 'fa:16:3e:00:00:01,10.65.0.10,web-1\n'],
    ]);
    expect([...files.dns]).toEqual([
      ['fa-16-3e-00-00-01', '10.65.0.10\tweb-1.calyxlocal\tweb-1\n'],
    ]);
    expect(files.dhcp.get('fa-16-3e-00-00-01')).not.toContain('set:');
  });

  it('selects options by the range tag', () => {
    expect(renderOpts(inst).split('\n').filter(Boolean)).toEqual([
      'tag:sub-a,option:router,10.65.0.1',
      'tag:sub-a,option:dns-server,10.0.0.53',
      'tag:sub-a,option:mtu,1450',
      'tag:sub-a,option:classless-static-route,10.99.0.0/16,10.65.0.254,0.0.0.0/0,10.65.0.1',
      'tag:sub-b,option:router,10.66.0.1',
      'tag:sub-b,option:mtu,1500',
    ]);
  });

  it('builds the command line that serves new taps without a restart', () => {
    const argv = renderCommandLine(inst, paths, opts);
    expect(argv).toContain('--bridge-interface=ns-calyx,tap*');
    expect(argv).toContain('--interface=ns-calyx');
    expect(argv).toContain('--interface=nq-calyx');
    expect(argv).toContain('--dhcp-ignore=tag:!known');
    expect(argv).toContain('--dhcp-hostsdir=/s/calyx/hosts.d');
    expect(argv).toContain('--hostsdir=/s/calyx/names.d');
    expect(argv).toContain('--dhcp-range=set:sub-a,10.65.0.0,static,255.255.255.0,86400s');
    expect(argv).toContain('--dhcp-range=set:sub-b,10.66.0.0,static,255.255.240.0,86400s');
    expect(argv.some((a) => a.startsWith('--interface=tap'))).toBe(false);
    expect(peerInterfaceName('ns-0123456789a')).toBe('nq-0123456789a');
  });

  it.each([
    [{ interfaceName: 'ns-way-too-long-name' }],
    [{ name: '../etc' }],
    [{ hosts: [{ mac: 'fa:16:3e:00:00:01', ip: '10.65.0.10', hostname: 'bad,name' }] }],
    [{ hosts: [{ mac: 'nope', ip: '10.65.0.10', hostname: 'ok' }] }],
    [{ subnets: [{ ...inst.subnets[0]!, tag: 'a,b' }] }],
    [{ subnets: [{ ...inst.subnets[0]!, gateway: '2001:db8::1' }] }],
  ])('refuses what could reach dnsmasq unsafely %#', (bad) => {
    expect(() => validateInstance({ ...inst, ...bad } as DnsmasqInstance)).toThrow();
  });

  it('refuses a domain or user that is not a plain name', () => {
    expect(() =>
      renderCommandLine(inst, paths, { ...opts, domain: 'x --conf-file=/etc/evil' }),
    ).toThrow(InvalidNameError);
    expect(() => renderCommandLine(inst, paths, { ...opts, user: 'root;id' })).toThrow(
      InvalidNameError,
    );
  });
});

import { formatIP, isCidr, normalizeMac, parseIP } from '@calyx/netaddr';
import { assertInterfaceName, InvalidNameError } from '@calyx/dataplane';

/** One DHCP-served IPv4 subnet of an instance. */
export interface DnsmasqSubnet {
  /** dnsmasq tag selecting this subnet's options (`[A-Za-z0-9_.-]`). */
  tag: string;
  network: string;
  prefixLength: number;
  /** Held by the instance's interface; the router option and the DHCP server address. */
  gateway: string;
  dnsServers: readonly string[];
  mtu: number;
  classlessRoutes: readonly { destination: string; nexthop: string }[];
}

export interface DnsmasqHost {
  mac: string;
  ip: string;
  hostname: string;
}

/** One dnsmasq process: the subnets it serves and its static leases. */
export interface DnsmasqInstance {
  name: string;
  interfaceName: string;
  subnets: readonly DnsmasqSubnet[];
  hosts: readonly DnsmasqHost[];
}

export interface DnsmasqPaths {
  dir: string;
  /** `--dhcp-hostsfile` and `--addn-hosts`: every port as of the last reload. */
  hosts: string;
  addnHosts: string;
  /** `--dhcp-hostsdir`: one file per MAC, read on inotify without a reload. */
  hostsDir: string;
  /** `--hostsdir`: the ports' DNS names, one file per MAC. */
  namesDir: string;
  opts: string;
  leases: string;
  pid: string;
  log: string;
}

export interface RenderOptions {
  domain: string;
  leaseSeconds: number;
  /** Endpoint interfaces (`tap*`): DHCP requests on them are served as if on the instance interface. */
  endpointInterfacePattern: string;
  user: string;
  logDhcp: boolean;
}

const TAG = /^[A-Za-z0-9_.-]{1,64}$/;
const HOSTNAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const DOMAIN = /^[a-z0-9]([a-z0-9.-]{0,200}[a-z0-9])?$/;

const CANONICAL_V4 =
  /^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;
const CANONICAL_MAC = /^[0-9a-f]{2}(?::[0-9a-f]{2}){5}$/;

function v4(what: string, ip: string): string {
  if (CANONICAL_V4.test(ip)) return ip;
  const a = parseIP(ip);
  if (a.family !== 4) throw new InvalidNameError(what, ip, 'an IPv4 address');
  return formatIP(a);
}

function mask(prefix: number): string {
  const m = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  return [24, 16, 8, 0].map((s) => (m >>> s) & 255).join('.');
}

/** The peer of the instance interface when it is a veth pair (`ns-x` → `nq-x`). */
export function peerInterfaceName(interfaceName: string): string {
  return assertInterfaceName(
    interfaceName.startsWith('ns-')
      ? `nq-${interfaceName.slice(3)}`
      : `${interfaceName.slice(0, 14)}p`,
  );
}

export function validateInstance(inst: DnsmasqInstance): void {
  assertInterfaceName(inst.interfaceName);
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/.test(inst.name))
    throw new InvalidNameError(
      'dnsmasq instance name',
      inst.name,
      '1-64 characters of [A-Za-z0-9_.-]',
    );
  for (const s of inst.subnets) {
    if (!TAG.test(s.tag)) throw new InvalidNameError('dnsmasq tag', s.tag, '[A-Za-z0-9_.-]{1,64}');
    v4('network', s.network);
    v4('gateway', s.gateway);
    if (!Number.isInteger(s.prefixLength) || s.prefixLength < 1 || s.prefixLength > 30)
      throw new InvalidNameError('prefix length', String(s.prefixLength), '1..30');
    if (!Number.isInteger(s.mtu) || s.mtu < 68 || s.mtu > 65535)
      throw new InvalidNameError('MTU', String(s.mtu), '68..65535');
    s.dnsServers.forEach((d) => v4('DNS server', d));
    for (const r of s.classlessRoutes) {
      if (!isCidr(r.destination))
        throw new InvalidNameError('route destination', r.destination, 'a CIDR');
      v4('route next hop', r.nexthop);
    }
  }
  for (const h of inst.hosts) {
    if (!CANONICAL_MAC.test(h.mac)) normalizeMac(h.mac);
    v4('host address', h.ip);
    if (!HOSTNAME.test(h.hostname))
      throw new InvalidNameError('hostname', h.hostname, 'a DNS label');
  }
}

export interface HostFiles {
  /** File name (the MAC, `:` → `-`) → `mac,ip,hostname` lines for `--dhcp-hostsdir`. */
  dhcp: Map<string, string>;
  /** Same names → `ip fqdn name` lines for `--hostsdir`. */
  dns: Map<string, string>;
}

/**
 * One file per port (MAC) in each directory. No `set:` tags: dnsmasq 2.90 crashes on SIGHUP
 * when host lines carry them and a lease is active; options select on the range tag instead.
 */
export function renderHostFiles(
  inst: DnsmasqInstance,
  domain: string,
  memo?: Map<string, [string, string, string]>,
): HostFiles {
  const dhcp = new Map<string, string>();
  const dns = new Map<string, string>();
  for (const h of inst.hosts) {
    // Rendering is memoised per (mac, ip, name): a reconcile of 10,000 ports re-renders only what changed.
    const key = `${h.mac}|${h.ip}|${h.hostname}`;
    let r = memo?.get(key);
    if (!r) {
      const mac = CANONICAL_MAC.test(h.mac) ? h.mac : normalizeMac(h.mac);
      const ip = v4('host address', h.ip);
      r = [
        mac.replace(/:/g, '-'),
        `${mac},${ip},${h.hostname}\n`,
        `${ip}\t${h.hostname}.${domain}\t${h.hostname}\n`,
      ];
      memo?.set(key, r);
    }
    const [file, d, n] = r;
    const prevD = dhcp.get(file);
    dhcp.set(file, prevD === undefined ? d : prevD + d);
    const prevN = dns.get(file);
    dns.set(file, prevN === undefined ? n : prevN + n);
  }
  return { dhcp, dns };
}

/** `--dhcp-optsfile`: router, DNS servers, MTU and classless routes per subnet tag. */
export function renderOpts(inst: DnsmasqInstance): string {
  const lines: string[] = [];
  for (const s of inst.subnets) {
    lines.push(`tag:${s.tag},option:router,${s.gateway}`);
    if (s.dnsServers.length) lines.push(`tag:${s.tag},option:dns-server,${s.dnsServers.join(',')}`);
    lines.push(`tag:${s.tag},option:mtu,${s.mtu}`);
    if (s.classlessRoutes.length) {
      lines.push(
        `tag:${s.tag},option:classless-static-route,${s.classlessRoutes.map((r) => `${r.destination},${r.nexthop}`).join(',')}`,
      );
    }
  }
  return lines.map((l) => `${l}\n`).join('');
}

/**
 * The command line. What the mechanism needs (each piece measured on this kernel and dnsmasq):
 * - `--bridge-interface=<ns>,tap*`: DHCP on any tap, present or future, is served as if on the
 *   instance interface — no restart when ports come and go;
 * - `--dhcp-hostsdir`/`--hostsdir`: a new port is a new file, read through inotify with no
 *   reload at all (O(1) whatever the number of ports); removals need a SIGHUP, which re-reads
 *   `--dhcp-hostsfile`/`--addn-hosts` where everything is compacted at that moment;
 * - `--interface=<ns>` plus its veth peer: with a single `--interface`, dnsmasq binds its DHCP
 *   socket to that device and never sees the taps; listing `tap*` instead would bind DNS on
 *   every tap's link-local address and collide with other instances;
 * - `--dhcp-ignore=tag:!known`: clients that are not in this instance's hosts file are ignored
 *   (never NAKed), so instances sharing `tap*` leave each other's ports alone.
 */
export function renderCommandLine(
  inst: DnsmasqInstance,
  paths: DnsmasqPaths,
  opts: RenderOptions,
): string[] {
  if (!DOMAIN.test(opts.domain)) throw new InvalidNameError('domain', opts.domain, 'a DNS domain');
  if (!/^[A-Za-z0-9*_.-]{1,15}$/.test(opts.endpointInterfacePattern))
    throw new InvalidNameError(
      'interface pattern',
      opts.endpointInterfacePattern,
      '[A-Za-z0-9*_.-]{1,15}',
    );
  if (!/^[a-z_][a-z0-9_-]{0,31}$/.test(opts.user))
    throw new InvalidNameError('user', opts.user, 'a user name');
  const argv = [
    'dnsmasq',
    '--no-hosts',
    '--no-resolv',
    '--strict-order',
    '--except-interface=lo',
    `--pid-file=${paths.pid}`,
    `--dhcp-hostsfile=${paths.hosts}`,
    `--addn-hosts=${paths.addnHosts}`,
    `--dhcp-hostsdir=${paths.hostsDir}`,
    `--hostsdir=${paths.namesDir}`,
    `--dhcp-optsfile=${paths.opts}`,
    `--dhcp-leasefile=${paths.leases}`,
    '--bind-dynamic',
    `--interface=${inst.interfaceName}`,
    `--interface=${peerInterfaceName(inst.interfaceName)}`,
    `--bridge-interface=${inst.interfaceName},${opts.endpointInterfacePattern}`,
    ...inst.subnets.map(
      (s) =>
        `--dhcp-range=set:${s.tag},${s.network},static,${mask(s.prefixLength)},${opts.leaseSeconds}s`,
    ),
    '--dhcp-ignore=tag:!known',
    // From the subnets, not the ports: anything that varies with ports would force restarts.
    `--dhcp-lease-max=${Math.min(
      1 << 20,
      Math.max(
        256,
        inst.subnets.reduce((n, s) => n + 2 ** (32 - s.prefixLength), 0),
      ),
    )}`,
    '--conf-file=',
    `--domain=${opts.domain}`,
    // Unknown names of our domain are NXDOMAIN, not REFUSED (there are no upstream servers).
    `--local=/${opts.domain}/`,
    `--user=${opts.user}`,
    `--log-facility=${paths.log}`,
    ...(opts.logDhcp ? ['--log-dhcp'] : []),
  ];
  return argv;
}

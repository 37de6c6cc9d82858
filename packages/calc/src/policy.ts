import { createHash } from 'node:crypto';
import { parseCidr } from '@calyx/netaddr';
import type { Endpoint, SecurityGroup, SecurityGroupRule } from '@calyx/model';
import { localEndpoints } from './routes.js';
import type { ResourceView } from './types.js';

/**
 * The policy compiler: from endpoints and security groups, one host's iptables chains and
 * ipsets, per IP family, in the spirit of Calico's Felix.
 *
 *   raw PREROUTING → calyx-PREROUTING: anti-spoofing. A packet from a tap must carry a
 *     source (address or allowed pair) listed for that very tap in the `calyx-N-sources`
 *     set (`hash:net,iface`); DHCP from 0.0.0.0 and IPv6 link-local excepted.
 *   filter FORWARD → calyx-FORWARD: invalid dropped, established accepted, then
 *     -i tap+ → calyx-from-wl (dispatch tree by interface name) → calyx-fw-<tap> (egress)
 *     -o tap+ → calyx-to-wl   (dispatch tree)                   → calyx-tw-<tap> (ingress)
 *   Endpoint chains check the source MAC (egress), then RETURN with the accept mark when one
 *   of the endpoint's security groups allows the packet and DROP otherwise; an unknown tap
 *   falls off the dispatch tree into DROP (fail closed).
 *   Security groups are shared chains (calyx-si-/calyx-se-<group>): changing a group rewrites
 *   one chain, whatever the number of its endpoints. Remote groups are ipsets of the members'
 *   addresses, wherever the members live.
 *   filter INPUT → calyx-INPUT: from a VM to the host only DHCP, DNS, ICMP echo, IPv6
 *     neighbour discovery (and what is configured, e.g. metadata).
 *   nat POSTROUTING → calyx-POSTROUTING: masquerade from NAT-outgoing pools to outside all pools.
 */

export const ACCEPT_MARK = '0x10000';
const MAC_MARK = '0x20000';

export interface FilterOptions {
  /** Interface name prefix of endpoints. Default `tap`. */
  interfacePrefix?: string;
  /** Extra VM → host allowances, e.g. metadata: `{ protocol: 'tcp', port: 80, destination: '169.254.169.254' }`. */
  hostServices?: readonly HostService[];
  /** Allow ICMP echo from VMs to the host (ping the gateway). Default true. */
  allowPingHost?: boolean;
  /** Most interfaces in one dispatch chain before it is split by the next character. Default 32. */
  dispatchLeafSize?: number;
}

export interface HostService {
  protocol: 'tcp' | 'udp';
  port: number;
  /** Only to this host address (e.g. 169.254.169.254); default any of the host's. */
  destination?: string;
}

/** A chain's rules (what follows `-A <chain>`), shared by identity while unchanged. */
export type Rules = readonly string[];

export interface DesiredTable {
  /** Calyx's chains by name. */
  chains: Map<string, Rules>;
  /** Jumps that must be first in the kernel's built-in chains: built-in chain → rule. */
  hooks: Map<string, string>;
}

export interface DesiredFamilyFilter {
  filter: DesiredTable;
  raw: DesiredTable;
  nat: DesiredTable;
}

export type IpsetType = 'hash:net' | 'hash:net,iface';

export interface DesiredIpset {
  family: 4 | 6;
  type: IpsetType;
  /** Sorted members (`prefix` or `prefix,iface`), shared by identity while unchanged. */
  members: readonly string[];
}

export interface DesiredFilter {
  v4: DesiredFamilyFilter;
  v6: DesiredFamilyFilter;
  ipsets: Map<string, DesiredIpset>;
}

const short = (s: string, n = 10) => createHash('sha256').update(s).digest('hex').slice(0, n);

/** Names of everything the compiler emits (all within iptables' 28 and ipset's 31 characters). */
export const chainNames = {
  endpointIn: (iface: string) => `calyx-tw-${iface}`,
  endpointOut: (iface: string) => `calyx-fw-${iface}`,
  groupIn: (sg: string) => `calyx-si-${short(sg)}`,
  groupOut: (sg: string) => `calyx-se-${short(sg)}`,
  groupSet: (family: 4 | 6, sg: string) => `calyx-${family}-${short(sg)}`,
  sources: (family: 4 | 6) => `calyx-${family}-sources`,
  masqPools: (family: 4 | 6) => `calyx-${family}-masq-pools`,
  allPools: (family: 4 | 6) => `calyx-${family}-all-pools`,
};

const familyOf = (ip: string): 4 | 6 => (ip.includes(':') ? 6 : 4);
const hostPrefix = (a: string): string =>
  a.includes('/') ? a : `${a}/${familyOf(a) === 4 ? 32 : 128}`;

/** Protocols whose port match module is named after them. */
const PORT_MODULES = new Set(['tcp', 'udp', 'sctp', 'dccp']);

/** iptables match for one security group rule (without the target); undefined for the other family. */
export function ruleMatch(r: SecurityGroupRule, family: 4 | 6): string | undefined {
  if (r.ethertype !== `IPv${family}`) return undefined;
  const parts: string[] = [];
  const ingress = r.direction === 'ingress';
  if (r.remoteIpPrefix !== null) parts.push(`${ingress ? '-s' : '-d'} ${r.remoteIpPrefix}`);
  const proto = r.protocol;
  if (proto !== null) {
    const p = proto === 'icmpv6' ? 'ipv6-icmp' : proto;
    parts.push(`-p ${p}`);
    if (r.portRangeMin !== null) {
      const max = r.portRangeMax ?? r.portRangeMin;
      const range = r.portRangeMin === max ? `${r.portRangeMin}` : `${r.portRangeMin}:${max}`;
      parts.push(
        PORT_MODULES.has(p) ? `-m ${p} --dport ${range}` : `-m multiport --dports ${range}`,
      );
    }
    if ((proto === 'icmp' || proto === 'icmpv6') && r.icmpType !== null) {
      const t = r.icmpCode !== null ? `${r.icmpType}/${r.icmpCode}` : `${r.icmpType}`;
      parts.push(proto === 'icmp' ? `-m icmp --icmp-type ${t}` : `-m icmp6 --icmpv6-type ${t}`);
    }
  }
  if (r.remoteGroupId !== null)
    parts.push(
      `-m set --match-set ${chainNames.groupSet(family, r.remoteGroupId)} ${ingress ? 'src' : 'dst'}`,
    );
  return parts.join(' ');
}

/** A group's chain for one direction and family: each allowing rule sets the accept mark and returns. */
export function groupChain(
  sg: SecurityGroup,
  direction: 'ingress' | 'egress',
  family: 4 | 6,
): string[] {
  const rules: string[] = [];
  for (const r of sg.rules) {
    if (r.direction !== direction) continue;
    const m = ruleMatch(r, family);
    if (m === undefined) continue;
    rules.push(`${m ? `${m} ` : ''}-j MARK --set-xmark ${ACCEPT_MARK}/${ACCEPT_MARK}`);
    rules.push(`-m mark --mark ${ACCEPT_MARK}/${ACCEPT_MARK} -j RETURN`);
  }
  return rules;
}

/** An endpoint's chain for one direction: admin state, source MAC, its groups, default drop. */
export function endpointChain(
  e: Endpoint,
  direction: 'ingress' | 'egress',
  extraMacs: readonly string[] = [],
): string[] {
  if (!e.adminStateUp) return ['-m comment --comment "admin state down" -j DROP'];
  const accept = [`-j MARK --set-xmark ${ACCEPT_MARK}/${ACCEPT_MARK}`, '-j RETURN'];
  if (!e.portSecurityEnabled) return accept;
  const rules: string[] = [];
  if (direction === 'egress') {
    const macs = [...new Set([e.mac, ...extraMacs])];
    if (macs.length === 1) rules.push(`-m mac ! --mac-source ${e.mac} -j DROP`);
    else {
      rules.push(`-j MARK --set-xmark 0x0/${MAC_MARK}`);
      for (const m of macs)
        rules.push(`-m mac --mac-source ${m} -j MARK --set-xmark ${MAC_MARK}/${MAC_MARK}`);
      rules.push(`-m mark ! --mark ${MAC_MARK}/${MAC_MARK} -j DROP`);
    }
  }
  rules.push(`-j MARK --set-xmark 0x0/${ACCEPT_MARK}`);
  for (const g of [...e.securityGroupIds].sort()) {
    rules.push(`-j ${direction === 'ingress' ? chainNames.groupIn(g) : chainNames.groupOut(g)}`);
    rules.push(`-m mark --mark ${ACCEPT_MARK}/${ACCEPT_MARK} -j RETURN`);
  }
  rules.push('-m comment --comment "no security group allowed it" -j DROP');
  return rules;
}

/**
 * Dispatch by interface name as a tree: a chain holds at most `leaf` interfaces, else splits
 * by the next character, so adding an endpoint rewrites one small chain, never a chain of N.
 */
export function dispatchChains(
  root: string,
  names: readonly string[],
  prefix: string,
  dir: '-i' | '-o',
  target: (name: string) => string,
  leaf: number,
): Map<string, string[]> {
  const out = new Map<string, string[]>();
  const build = (chain: string, group: string[], depth: number): void => {
    const rules: string[] = [];
    if (group.length <= leaf || depth >= 15) {
      for (const n of group) rules.push(`${dir} ${n} -g ${target(n)}`);
    } else {
      const byChar = new Map<string, string[]>();
      for (const n of group) {
        const c = n.slice(0, depth + 1);
        const list = byChar.get(c);
        if (list) list.push(n);
        else byChar.set(c, [n]);
      }
      for (const [p, list] of byChar) {
        // A name that is exactly this prefix has no further character to split by.
        const exact = list.indexOf(p);
        if (exact >= 0) {
          rules.push(`${dir} ${p} -g ${target(p)}`);
          list.splice(exact, 1);
          if (list.length === 0) continue;
        }
        if (list.length === 1) {
          rules.push(`${dir} ${list[0]} -g ${target(list[0]!)}`);
          continue;
        }
        const child = `${root}-${p.slice(prefix.length)}`;
        rules.push(`${dir} ${p}+ -g ${child}`);
        build(child, list, depth + 1);
      }
    }
    // Anything else that looks like an endpoint but is not one of ours: fail closed.
    rules.push('-m comment --comment "unknown endpoint interface" -j DROP');
    out.set(chain, rules);
  };
  build(root, [...names].sort(), prefix.length);
  return out;
}

function table(): DesiredTable {
  return { chains: new Map(), hooks: new Map() };
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Memoised compilation. Chains are rebuilt only for endpoints or groups that changed, and an
 * unchanged chain or ipset keeps its array identity from the previous `compute`, so the
 * programmer skips it without comparing: one endpoint changed among 10,000 costs a few chains.
 */
export class PolicyCompiler {
  private readonly endpointMemo = new Map<string, { key: string; chains: [Rules, Rules] }>();
  private readonly groupMemo = new Map<
    string,
    { sg: SecurityGroup; chains: Record<'in4' | 'out4' | 'in6' | 'out6', Rules> }
  >();
  /** Previous output by name, to hand back the same array when the content is unchanged. */
  private previousChains = new Map<string, Rules>();
  private previousSets = new Map<string, readonly string[]>();
  private readonly opts: Required<Omit<FilterOptions, 'hostServices'>> &
    Pick<FilterOptions, 'hostServices'>;

  constructor(opts: FilterOptions = {}) {
    this.opts = { interfacePrefix: 'tap', allowPingHost: true, dispatchLeafSize: 32, ...opts };
  }

  private endpointChains(e: Endpoint): [Rules, Rules] {
    const pairMacs = e.allowedAddressPairs.map((p) => p.macAddress).filter((m): m is string => !!m);
    const key = JSON.stringify([
      e.adminStateUp,
      e.portSecurityEnabled,
      e.mac,
      pairMacs,
      [...e.securityGroupIds].sort(),
    ]);
    const hit = this.endpointMemo.get(e.interfaceName);
    if (hit && hit.key === key) return hit.chains;
    const chains: [Rules, Rules] = [
      endpointChain(e, 'ingress'),
      endpointChain(e, 'egress', pairMacs),
    ];
    this.endpointMemo.set(e.interfaceName, { key, chains });
    return chains;
  }

  private groupChains(sg: SecurityGroup): Record<'in4' | 'out4' | 'in6' | 'out6', Rules> {
    const hit = this.groupMemo.get(sg.id);
    if (hit && hit.sg === sg) return hit.chains;
    const chains = {
      in4: groupChain(sg, 'ingress', 4),
      out4: groupChain(sg, 'egress', 4),
      in6: groupChain(sg, 'ingress', 6),
      out6: groupChain(sg, 'egress', 6),
    };
    this.groupMemo.set(sg.id, { sg, chains });
    return chains;
  }

  compute(view: ResourceView, hostname: string): DesiredFilter {
    const prefix = this.opts.interfacePrefix;
    const local = localEndpoints(view, hostname);
    const v4: DesiredFamilyFilter = { filter: table(), raw: table(), nat: table() };
    const v6: DesiredFamilyFilter = { filter: table(), raw: table(), nat: table() };
    const ipsets = new Map<string, DesiredIpset>();
    const usedGroups = new Set<string>();
    const remoteGroups = new Set<string>();
    for (const e of local) for (const g of e.securityGroupIds) usedGroups.add(g);
    for (const g of usedGroups)
      for (const r of view.securityGroups.get(g)?.rules ?? [])
        if (r.remoteGroupId) remoteGroups.add(r.remoteGroupId);

    const live = new Set(local.map((e) => e.interfaceName));
    for (const k of this.endpointMemo.keys()) if (!live.has(k)) this.endpointMemo.delete(k);
    for (const k of this.groupMemo.keys())
      if (!view.securityGroups.has(k)) this.groupMemo.delete(k);

    // Addresses each local endpoint may send from, per family.
    const sources = { 4: [] as string[], 6: [] as string[] };
    const hasFamily = { 4: new Set<string>(), 6: new Set<string>() };
    for (const e of local) {
      if (!e.adminStateUp) continue;
      const tap = e.interfaceName;
      if (!e.portSecurityEnabled) {
        // hash:net refuses /0: two halves cover everything.
        sources[4].push(`0.0.0.0/1,${tap}`, `128.0.0.0/1,${tap}`);
        sources[6].push(`::/1,${tap}`, `8000::/1,${tap}`);
        hasFamily[4].add(tap);
        hasFamily[6].add(tap);
        continue;
      }
      const addrs = [
        ...e.fixedIps.map((f) => f.ipAddress),
        ...e.allowedAddressPairs.map((p) => p.ipAddress),
      ];
      for (const a of addrs) {
        const f = familyOf(a);
        sources[f].push(`${hostPrefix(a)},${tap}`);
        hasFamily[f].add(tap);
      }
    }

    for (const [family, f] of [
      [4, v4],
      [6, v6],
    ] as const) {
      const chains = f.filter.chains;
      // An endpoint gets chains in a family only when it has addresses of it: a single-stack
      // VM costs one family's restore, and what it sends in the other family falls off the
      // dispatch tree into DROP. Admin-down endpoints keep their (DROP) chains.
      const members = local.filter(
        (e) =>
          hasFamily[family].has(e.interfaceName) ||
          (!e.adminStateUp && e.fixedIps.some((x) => familyOf(x.ipAddress) === family)),
      );
      for (const e of members) {
        const [tw, fw] = this.endpointChains(e);
        chains.set(chainNames.endpointIn(e.interfaceName), tw);
        chains.set(chainNames.endpointOut(e.interfaceName), fw);
      }
      for (const g of usedGroups) {
        const sg = view.securityGroups.get(g);
        // A group that does not exist (yet) allows nothing: its chains are empty.
        const c = sg ? this.groupChains(sg) : undefined;
        chains.set(chainNames.groupIn(g), (family === 4 ? c?.in4 : c?.in6) ?? []);
        chains.set(chainNames.groupOut(g), (family === 4 ? c?.out4 : c?.out6) ?? []);
      }
      const names = members.map((e) => e.interfaceName);
      const leaf = this.opts.dispatchLeafSize;
      for (const [name, rules] of dispatchChains(
        'calyx-from-wl',
        names,
        prefix,
        '-i',
        chainNames.endpointOut,
        leaf,
      ))
        chains.set(name, rules);
      for (const [name, rules] of dispatchChains(
        'calyx-to-wl',
        names,
        prefix,
        '-o',
        chainNames.endpointIn,
        leaf,
      ))
        chains.set(name, rules);
      chains.set('calyx-FORWARD', [
        '-m conntrack --ctstate INVALID -j DROP',
        '-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
        `-i ${prefix}+ -j calyx-from-wl`,
        `-o ${prefix}+ -j calyx-to-wl`,
        `-i ${prefix}+ -j ACCEPT`,
        `-o ${prefix}+ -j ACCEPT`,
      ]);
      chains.set('calyx-wl-to-host', this.toHostChain(family));
      chains.set('calyx-INPUT', [`-i ${prefix}+ -j calyx-wl-to-host`]);
      f.filter.hooks.set('FORWARD', '-j calyx-FORWARD');
      f.filter.hooks.set('INPUT', '-j calyx-INPUT');

      ipsets.set(chainNames.sources(family), {
        family,
        type: 'hash:net,iface',
        members: sources[family].sort(),
      });
      f.raw.chains.set('calyx-PREROUTING', [
        ...(family === 4
          ? [`-i ${prefix}+ -s 0.0.0.0/32 -p udp -m udp --sport 68 --dport 67 -j RETURN`]
          : [`-i ${prefix}+ -s fe80::/10 -j RETURN`, `-i ${prefix}+ -s ::/128 -j RETURN`]),
        `-i ${prefix}+ -m set ! --match-set ${chainNames.sources(family)} src,src -m comment --comment "source not allowed for this interface" -j DROP`,
      ]);
      f.raw.hooks.set('PREROUTING', '-j calyx-PREROUTING');

      // NAT outgoing: from pools that ask for it to anywhere outside every pool.
      const pools = [...view.ipPools.values()].filter(
        (p) => !p.disabled && parseCidr(p.cidr).family === family,
      );
      const masq = pools
        .filter((p) => p.natOutgoing)
        .map((p) => p.cidr)
        .sort();
      const nat: string[] = [];
      if (masq.length) {
        const masqSet = chainNames.masqPools(family);
        const allSet = chainNames.allPools(family);
        ipsets.set(masqSet, { family, type: 'hash:net', members: masq });
        ipsets.set(allSet, { family, type: 'hash:net', members: pools.map((p) => p.cidr).sort() });
        nat.push(
          `-m set --match-set ${masqSet} src -m set ! --match-set ${allSet} dst -j MASQUERADE`,
        );
      }
      f.nat.chains.set('calyx-POSTROUTING', nat);
      f.nat.hooks.set('POSTROUTING', '-j calyx-POSTROUTING');
    }

    // Remote groups: their members' addresses, wherever the members live.
    if (remoteGroups.size) {
      const members = new Map<string, string[]>();
      for (const g of remoteGroups)
        for (const family of [4, 6] as const) members.set(chainNames.groupSet(family, g), []);
      for (const e of view.endpoints.values()) {
        for (const g of e.securityGroupIds) {
          if (!remoteGroups.has(g)) continue;
          for (const a of [
            ...e.fixedIps.map((x) => x.ipAddress),
            ...e.allowedAddressPairs.map((p) => p.ipAddress),
          ])
            members.get(chainNames.groupSet(familyOf(a), g))!.push(hostPrefix(a));
        }
      }
      for (const [name, list] of members)
        ipsets.set(name, {
          family: name.startsWith('calyx-4-') ? 4 : 6,
          type: 'hash:net',
          members: [...new Set(list)].sort(),
        });
    }
    return this.reuse({ v4, v6, ipsets });
  }

  private toHostChain(family: 4 | 6): string[] {
    const rules = [
      '-m conntrack --ctstate INVALID -j DROP',
      '-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
      family === 4
        ? '-p udp -m udp --sport 68 --dport 67 -j ACCEPT'
        : '-p udp -m udp --sport 546 --dport 547 -j ACCEPT',
      '-p udp -m udp --dport 53 -j ACCEPT',
      '-p tcp -m tcp --dport 53 -j ACCEPT',
    ];
    // Router solicitation and neighbour solicitation/advertisement to the host.
    if (family === 6)
      for (const t of [133, 135, 136])
        rules.push(`-p ipv6-icmp -m icmp6 --icmpv6-type ${t} -j ACCEPT`);
    if (this.opts.allowPingHost)
      rules.push(
        family === 4
          ? '-p icmp -m icmp --icmp-type 8 -j ACCEPT'
          : '-p ipv6-icmp -m icmp6 --icmpv6-type 128 -j ACCEPT',
      );
    for (const s of this.opts.hostServices ?? []) {
      if (s.destination && familyOf(s.destination) !== family) continue;
      rules.push(
        `${s.destination ? `-d ${hostPrefix(s.destination)} ` : ''}-p ${s.protocol} -m ${s.protocol} --dport ${s.port} -j ACCEPT`,
      );
    }
    rules.push('-m comment --comment "VM to host: not allowed" -j DROP');
    return rules;
  }

  /** Hands back last time's arrays where the content is the same, so identity means "unchanged". */
  private reuse(out: DesiredFilter): DesiredFilter {
    const chains = new Map<string, Rules>();
    for (const [fam, f] of [
      ['4', out.v4],
      ['6', out.v6],
    ] as const) {
      for (const [tname, t] of Object.entries(f) as [string, DesiredTable][]) {
        for (const [name, rules] of t.chains) {
          const key = `${fam}/${tname}/${name}`;
          const prev = this.previousChains.get(key);
          const kept = prev && (prev === rules || sameList(prev, rules)) ? prev : rules;
          t.chains.set(name, kept);
          chains.set(key, kept);
        }
      }
    }
    this.previousChains = chains;
    const sets = new Map<string, readonly string[]>();
    for (const [name, s] of out.ipsets) {
      const prev = this.previousSets.get(name);
      const kept = prev && sameList(prev, s.members) ? prev : s.members;
      out.ipsets.set(name, { ...s, members: kept });
      sets.set(name, kept);
    }
    this.previousSets = sets;
    return out;
  }
}

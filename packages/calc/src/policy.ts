import { createHash } from 'node:crypto';
import { parseCidr } from '@calyx/netaddr';
import type { Endpoint, SecurityGroup, SecurityGroupRule } from '@calyx/model';
import { DispatchTree } from './dispatch.js';
import { TrackedMap } from './tracked.js';
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
  /** Calyx's chains by name (a TrackedMap: what changed since a generation is known). */
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
  /** Members (`prefix` or `prefix,iface`), shared by identity while unchanged. */
  members: readonly string[];
  /** How `members` differs from the previous list `base`, so a programmer can apply just that. */
  delta?: { base: readonly string[]; added: readonly string[]; removed: readonly string[] };
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

export { DispatchTree, dispatchChains } from './dispatch.js';
export { TrackedMap } from './tracked.js';

function table(): DesiredTable {
  return { chains: new TrackedMap(), hooks: new Map() };
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

const addressesOf = (e: Endpoint): string[] => [
  ...e.fixedIps.map((f) => f.ipAddress),
  ...e.allowedAddressPairs.map((p) => p.ipAddress),
];

type EndpointChange = [prev: Endpoint | undefined, next: Endpoint | undefined];

/**
 * Updates `seen` to `current` and returns what differs by object identity. The resource cache
 * keeps an unchanged resource's object, so this is one pass and no deep comparison.
 */
function diffByIdentity<T>(
  seen: Map<string, T>,
  current: ReadonlyMap<string, T>,
): [T | undefined, T | undefined][] {
  const out: [T | undefined, T | undefined][] = [];
  const before = seen.size;
  let kept = 0;
  for (const [id, v] of current) {
    const prev = seen.get(id);
    if (prev !== undefined) kept++;
    if (prev !== v) {
      out.push([prev, v]);
      seen.set(id, v);
    }
  }
  if (kept < before)
    for (const [id, v] of seen)
      if (!current.has(id)) {
        out.push([v, undefined]);
        seen.delete(id);
      }
  return out;
}

/** A remote group's members' addresses, counted (two ports may share an allowed pair). */
class RemoteGroup {
  readonly members = { 4: new Map<string, number>(), 6: new Map<string, number>() };
  /** Net membership changes since the last flush (+1 joined, -1 left). */
  net = { 4: new Map<string, number>(), 6: new Map<string, number>() };

  private change(e: Endpoint, delta: 1 | -1): boolean {
    let changed = false;
    for (const a of new Set(addressesOf(e).map(hostPrefix))) {
      const f = familyOf(a);
      const m = this.members[f];
      const n = (m.get(a) ?? 0) + delta;
      if (n > 0) m.set(a, n);
      else m.delete(a);
      if (n === 0 || (n === 1 && delta === 1)) {
        changed = true;
        this.net[f].set(a, (this.net[f].get(a) ?? 0) + delta);
      }
    }
    return changed;
  }

  add(e: Endpoint): boolean {
    return this.change(e, 1);
  }

  remove(e: Endpoint): boolean {
    return this.change(e, -1);
  }
}

/** What one local endpoint contributes, remembered to take it back when it changes. */
interface LocalState {
  endpoint: Endpoint;
  /** Families it has chains in. */
  families: (4 | 6)[];
  /** Groups whose chains it jumps to (admin up, port security on). */
  groups: string[];
  /** Its anti-spoofing entries per family. */
  sources: Record<4 | 6, string[]>;
  chains: [Rules, Rules];
}

interface FamilyState {
  out: DesiredFamilyFilter;
  from: DispatchTree;
  to: DispatchTree;
  /** Group → number of local endpoints of this family using it. */
  groupUse: Map<string, number>;
  /** Interface → its anti-spoofing entries. */
  sources: Map<string, string[]>;
  /** Net changes to the sources set since the last flush (+1 added, -1 removed). */
  sourcesDelta: Map<string, number>;
  sourcesDirty: boolean;
}

/**
 * The policy compiler, incremental. `compute(view, host)` compares the view with the one it
 * saw last by object identity (the resource cache keeps unchanged resources' objects) and
 * updates only what changed endpoints, groups and pools contribute; a chain or ipset whose
 * content did not change keeps its array, so the programmer skips it by identity. One
 * endpoint changed among 10,000 costs a pass over the map and a few chains, not a rebuild.
 *
 * The returned maps are the compiler's own and stay live: they are valid until the next
 * `compute` (copy them to keep a snapshot).
 */
export class PolicyCompiler {
  private readonly opts: Required<Omit<FilterOptions, 'hostServices'>> &
    Pick<FilterOptions, 'hostServices'>;
  private host: string | undefined;
  private out!: DesiredFilter;
  private fam!: Record<4 | 6, FamilyState>;
  /** Last seen objects: every endpoint (any host) and every group. */
  private endpoints = new Map<string, Endpoint>();
  private groups = new Map<string, SecurityGroup>();
  private poolsSeen = new Map<string, unknown>();
  /** Local endpoints by interface. */
  private local = new Map<string, LocalState>();
  /** Remote groups (referenced by a rule of a used group) and their members' addresses. */
  private remote = new Map<string, RemoteGroup>();
  private readonly dirtySets = new Set<string>();

  constructor(opts: FilterOptions = {}) {
    this.opts = { interfacePrefix: 'tap', allowPingHost: true, dispatchLeafSize: 32, ...opts };
    this.reset();
  }

  private reset(): void {
    const prefix = this.opts.interfacePrefix;
    const leaf = this.opts.dispatchLeafSize;
    const family = (f: 4 | 6): FamilyState => {
      const out: DesiredFamilyFilter = { filter: table(), raw: table(), nat: table() };
      const chains = out.filter.chains;
      chains.set('calyx-FORWARD', [
        '-m conntrack --ctstate INVALID -j DROP',
        '-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
        `-i ${prefix}+ -j calyx-from-wl`,
        `-o ${prefix}+ -j calyx-to-wl`,
        `-i ${prefix}+ -j ACCEPT`,
        `-o ${prefix}+ -j ACCEPT`,
      ]);
      chains.set('calyx-wl-to-host', this.toHostChain(f));
      chains.set('calyx-INPUT', [`-i ${prefix}+ -j calyx-wl-to-host`]);
      out.filter.hooks.set('FORWARD', '-j calyx-FORWARD');
      out.filter.hooks.set('INPUT', '-j calyx-INPUT');
      out.raw.chains.set('calyx-PREROUTING', [
        ...(f === 4
          ? [`-i ${prefix}+ -s 0.0.0.0/32 -p udp -m udp --sport 68 --dport 67 -j RETURN`]
          : [`-i ${prefix}+ -s fe80::/10 -j RETURN`, `-i ${prefix}+ -s ::/128 -j RETURN`]),
        `-i ${prefix}+ -m set ! --match-set ${chainNames.sources(f)} src,src -m comment --comment "source not allowed for this interface" -j DROP`,
      ]);
      out.raw.hooks.set('PREROUTING', '-j calyx-PREROUTING');
      out.nat.chains.set('calyx-POSTROUTING', []);
      out.nat.hooks.set('POSTROUTING', '-j calyx-POSTROUTING');
      return {
        out,
        from: new DispatchTree('calyx-from-wl', prefix, '-i', chainNames.endpointOut, leaf, chains),
        to: new DispatchTree('calyx-to-wl', prefix, '-o', chainNames.endpointIn, leaf, chains),
        groupUse: new Map(),
        sources: new Map(),
        sourcesDelta: new Map(),
        sourcesDirty: true,
      };
    };
    this.fam = { 4: family(4), 6: family(6) };
    this.out = { v4: this.fam[4].out, v6: this.fam[6].out, ipsets: new Map() };
    this.endpoints = new Map();
    this.groups = new Map();
    this.poolsSeen = new Map();
    this.local = new Map();
    this.remote = new Map();
    this.dirtySets.clear();
  }

  compute(view: ResourceView, hostname: string): DesiredFilter {
    if (this.host !== hostname) {
      this.reset();
      this.host = hostname;
    }
    // Groups first: endpoint chains refer to them, remote-group sets depend on their rules.
    const changedGroups = new Set<string>();
    for (const [prev, next] of diffByIdentity(this.groups, view.securityGroups))
      changedGroups.add((prev ?? next)!.id);
    // Endpoints by identity: a pass over the map, work only for what changed.
    const changed = diffByIdentity(this.endpoints, view.endpoints);

    for (const [prev, next] of changed) {
      if (prev && prev.host === hostname) this.removeLocal(prev);
      if (next && next.host === hostname) this.addLocal(next);
    }
    for (const g of changedGroups) this.refreshGroup(g);
    this.refreshRemoteGroups(changed);
    this.refreshPools(view);
    for (const f of [4, 6] as const) {
      const s = this.fam[f];
      s.from.flush();
      s.to.flush();
      if (s.sourcesDirty) {
        s.sourcesDirty = false;
        const members: string[] = [];
        for (const list of s.sources.values()) for (const m of list) members.push(m);
        this.setIpset(
          chainNames.sources(f),
          { family: f, type: 'hash:net,iface', members },
          s.sourcesDelta,
        );
        s.sourcesDelta = new Map();
      }
    }
    for (const name of this.dirtySets) this.flushRemoteSet(name);
    this.dirtySets.clear();
    return this.out;
  }

  /** Sets an ipset unless its content is unchanged; `net` (+1/-1 per member) becomes its delta. */
  private setIpset(name: string, next: DesiredIpset, net?: ReadonlyMap<string, number>): void {
    const prev = this.out.ipsets.get(name);
    if (prev && net && prev.type === next.type && prev.family === next.family) {
      // The net changes say whether anything changed: no need to compare the lists.
      const added: string[] = [];
      const removed: string[] = [];
      for (const [m, n] of net) {
        if (n > 0) added.push(m);
        else if (n < 0) removed.push(m);
      }
      if (added.length || removed.length)
        this.out.ipsets.set(name, { ...next, delta: { base: prev.members, added, removed } });
      return;
    }
    if (prev && prev.type === next.type && sameList(prev.members, next.members)) return;
    this.out.ipsets.set(name, next);
  }

  private noteSource(f: 4 | 6, entries: readonly string[], delta: 1 | -1): void {
    const net = this.fam[f].sourcesDelta;
    for (const m of entries) net.set(m, (net.get(m) ?? 0) + delta);
    this.fam[f].sourcesDirty = true;
  }

  private setChain(f: 4 | 6, name: string, rules: Rules): void {
    const chains = this.fam[f].out.filter.chains;
    const prev = chains.get(name);
    if (!prev || !sameList(prev, rules)) chains.set(name, rules);
  }

  private stateOf(e: Endpoint): LocalState {
    const sources: Record<4 | 6, string[]> = { 4: [], 6: [] };
    const families = new Set<4 | 6>();
    const tap = e.interfaceName;
    if (e.adminStateUp) {
      if (!e.portSecurityEnabled) {
        // hash:net refuses /0: two halves cover everything.
        sources[4].push(`0.0.0.0/1,${tap}`, `128.0.0.0/1,${tap}`);
        sources[6].push(`::/1,${tap}`, `8000::/1,${tap}`);
        families.add(4).add(6);
      } else {
        for (const a of addressesOf(e)) {
          const f = familyOf(a);
          sources[f].push(`${hostPrefix(a)},${tap}`);
          families.add(f);
        }
      }
    } else {
      // Admin down: DROP chains in the families of its addresses, no sources.
      for (const a of e.fixedIps) families.add(familyOf(a.ipAddress));
    }
    const pairMacs = e.allowedAddressPairs.map((p) => p.macAddress).filter((m): m is string => !!m);
    return {
      endpoint: e,
      families: [...families],
      groups: e.adminStateUp && e.portSecurityEnabled ? [...new Set(e.securityGroupIds)] : [],
      sources,
      chains: [endpointChain(e, 'ingress'), endpointChain(e, 'egress', pairMacs)],
    };
  }

  private addLocal(e: Endpoint): void {
    const tap = e.interfaceName;
    const prev = this.local.get(tap);
    // Two ports claiming one interface: the later one in id order wins, as before.
    if (prev) {
      if (prev.endpoint.id > e.id) return;
      this.removeLocal(prev.endpoint);
    }
    const st = this.stateOf(e);
    this.local.set(tap, st);
    for (const f of st.families) {
      const s = this.fam[f];
      this.setChain(f, chainNames.endpointIn(tap), st.chains[0]);
      this.setChain(f, chainNames.endpointOut(tap), st.chains[1]);
      s.from.add(tap);
      s.to.add(tap);
      for (const g of st.groups) this.useGroup(f, g, +1);
    }
    for (const f of [4, 6] as const)
      if (st.sources[f].length) {
        this.fam[f].sources.set(tap, st.sources[f]);
        this.noteSource(f, st.sources[f], 1);
      }
  }

  private removeLocal(e: Endpoint): void {
    const tap = e.interfaceName;
    const st = this.local.get(tap);
    if (!st || st.endpoint.id !== e.id) return;
    this.local.delete(tap);
    for (const f of st.families) {
      const s = this.fam[f];
      s.out.filter.chains.delete(chainNames.endpointIn(tap));
      s.out.filter.chains.delete(chainNames.endpointOut(tap));
      s.from.delete(tap);
      s.to.delete(tap);
      for (const g of st.groups) this.useGroup(f, g, -1);
    }
    for (const f of [4, 6] as const)
      if (this.fam[f].sources.delete(tap)) this.noteSource(f, st.sources[f], -1);
  }

  /** Group chains exist in a family while an endpoint of that family uses the group. */
  private useGroup(f: 4 | 6, g: string, delta: 1 | -1): void {
    const use = this.fam[f].groupUse;
    const n = (use.get(g) ?? 0) + delta;
    if (n > 0) use.set(g, n);
    else use.delete(g);
    if (n === 1 && delta === 1) this.writeGroupChains(f, g);
    if (n === 0) {
      const chains = this.fam[f].out.filter.chains;
      chains.delete(chainNames.groupIn(g));
      chains.delete(chainNames.groupOut(g));
    }
  }

  private writeGroupChains(f: 4 | 6, g: string): void {
    const sg = this.groups.get(g);
    // A group that does not exist (yet) allows nothing: its chains are empty.
    this.setChain(f, chainNames.groupIn(g), sg ? groupChain(sg, 'ingress', f) : []);
    this.setChain(f, chainNames.groupOut(g), sg ? groupChain(sg, 'egress', f) : []);
  }

  private refreshGroup(g: string): void {
    for (const f of [4, 6] as const) if (this.fam[f].groupUse.has(g)) this.writeGroupChains(f, g);
  }

  /** The groups referenced as remote by a group some local endpoint uses. */
  private wantedRemoteGroups(): Set<string> {
    const wanted = new Set<string>();
    const used = new Set([...this.fam[4].groupUse.keys(), ...this.fam[6].groupUse.keys()]);
    for (const g of used)
      for (const r of this.groups.get(g)?.rules ?? [])
        if (r.remoteGroupId) wanted.add(r.remoteGroupId);
    return wanted;
  }

  private refreshRemoteGroups(changed: readonly EndpointChange[]): void {
    const wanted = this.wantedRemoteGroups();
    for (const g of [...this.remote.keys()])
      if (!wanted.has(g)) {
        this.remote.delete(g);
        for (const f of [4, 6] as const) this.out.ipsets.delete(chainNames.groupSet(f, g));
      }
    const added = [...wanted].filter((g) => !this.remote.has(g));
    for (const g of added) this.remote.set(g, new RemoteGroup());
    if (added.length) {
      // A group newly referenced: its members gathered from every endpoint, once.
      for (const e of this.endpoints.values())
        for (const g of e.securityGroupIds) if (added.includes(g)) this.remote.get(g)!.add(e);
      for (const g of added) this.dirtySets.add(g);
    }
    for (const [prev, next] of changed) {
      for (const g of prev?.securityGroupIds ?? []) {
        const r = this.remote.get(g);
        if (r && !added.includes(g) && r.remove(prev!)) this.dirtySets.add(g);
      }
      for (const g of next?.securityGroupIds ?? []) {
        const r = this.remote.get(g);
        if (r && !added.includes(g) && r.add(next!)) this.dirtySets.add(g);
      }
    }
  }

  private flushRemoteSet(g: string): void {
    const r = this.remote.get(g);
    if (!r) return;
    for (const f of [4, 6] as const)
      this.setIpset(
        chainNames.groupSet(f, g),
        { family: f, type: 'hash:net', members: [...r.members[f].keys()] },
        r.net[f],
      );
    r.net = { 4: new Map(), 6: new Map() };
  }

  private refreshPools(view: ResourceView): void {
    let same = view.ipPools.size === this.poolsSeen.size;
    if (same) for (const [k, p] of view.ipPools) if (this.poolsSeen.get(k) !== p) same = false;
    if (same) return;
    this.poolsSeen = new Map(view.ipPools);
    for (const f of [4, 6] as const) {
      // NAT outgoing: from pools that ask for it to anywhere outside every pool.
      const pools = [...view.ipPools.values()].filter(
        (p) => !p.disabled && parseCidr(p.cidr).family === f,
      );
      const masq = pools
        .filter((p) => p.natOutgoing)
        .map((p) => p.cidr)
        .sort();
      const masqSet = chainNames.masqPools(f);
      const allSet = chainNames.allPools(f);
      const nat = this.fam[f].out.nat.chains;
      if (masq.length) {
        this.setIpset(masqSet, { family: f, type: 'hash:net', members: masq });
        this.setIpset(allSet, {
          family: f,
          type: 'hash:net',
          members: pools.map((p) => p.cidr).sort(),
        });
        const rule = `-m set --match-set ${masqSet} src -m set ! --match-set ${allSet} dst -j MASQUERADE`;
        if (nat.get('calyx-POSTROUTING')?.[0] !== rule) nat.set('calyx-POSTROUTING', [rule]);
      } else {
        this.out.ipsets.delete(masqSet);
        this.out.ipsets.delete(allSet);
        if (nat.get('calyx-POSTROUTING')?.length) nat.set('calyx-POSTROUTING', []);
      }
    }
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
}

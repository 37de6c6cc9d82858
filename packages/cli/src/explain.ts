import { cidrContains, parseCidr, parseIP } from '@calyx/netaddr';
import type { Endpoint, EndpointStatus } from '@calyx/model';
import {
  PolicyCompiler,
  chainNames,
  computeBgp,
  computeRoutes,
  type DesiredBgp,
  type DesiredBgpPeer,
  type DesiredFamilyFilter,
  type DesiredFilter,
  type ResourceView,
} from '@calyx/calc';
import { renderBirdConfig } from '@calyx/dataplane-bird';

// What one host computes for one endpoint, as the agent computes it (pure).

export interface ExplainedChain {
  family: 4 | 6;
  table: 'filter' | 'raw';
  chain: string;
  /** What the chain does for the endpoint. */
  role: string;
  /** The chain's rules (for dispatch chains, only those on the endpoint's path). */
  rules: string[];
  /** Only some of the chain's rules are shown. */
  partial: boolean;
}

export interface ExplainedIpset {
  name: string;
  family: 4 | 6;
  type: string;
  role: string;
  /** Members (for the shared anti-spoofing set, only the endpoint's). */
  members: string[];
  partial: boolean;
}

export interface ExplainedPeer {
  peer: string;
  neighbor: string;
  family: 4 | 6;
  /** The endpoint's addresses this peer is told about. */
  advertised: string[];
  why: string;
}

export interface EndpointExplanation {
  endpoint: Endpoint;
  host: string | null;
  /** What the agent last reported for it. */
  status: EndpointStatus | null;
  /** Host routes to the endpoint; null when none (unbound, admin down). */
  routes: { interfaceName: string; mac: string; addresses: string[] } | null;
  /** Its subnets' gateway addresses, which the host answers ARP/NDP for. */
  gateways: string[];
  iptables: ExplainedChain[];
  ipsets: ExplainedIpset[];
  bgp: {
    /** The host's whole BGP speaker, as calc computes it; null without a Host resource or router id. */
    config: DesiredBgp | null;
    /** bird.conf as the host's agent writes it. */
    birdConf: string | null;
    peers: ExplainedPeer[];
  };
  notes: string[];
}

export interface ExplainOptions {
  /** The agent's endpoint route protocol. Default 80. */
  routeProtocol?: number;
  /** The agent's BIRD state directory: bird.conf then names the same log file as the agent's. */
  birdStateDir?: string;
  /** The endpoint record's modRevision: a status about an earlier one is called stale. */
  endpointRevision?: bigint;
}

/** Whether a rule jumps (`-j`) or goes (`-g`) to `chain`. */
const jumpsTo = (rule: string, chain: string): boolean =>
  new RegExp(`(?:^|\\s)-[jg] ${chain.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(?:\\s|$)`).test(rule);

/** The dispatch rules that lead from the kernel's hooks to `target`, root first. */
function pathTo(
  chains: ReadonlyMap<string, readonly string[]>,
  target: string,
): { chain: string; rules: string[] }[] {
  const found: { chain: string; rules: string[] }[] = [];
  const seen = new Set<string>([target]);
  let frontier = [target];
  while (frontier.length) {
    const next: string[] = [];
    for (const [chain, rules] of chains) {
      const hits = rules.filter((r) => frontier.some((t) => jumpsTo(r, t)));
      if (!hits.length) continue;
      const at = found.find((f) => f.chain === chain);
      if (at) at.rules.push(...hits.filter((h) => !at.rules.includes(h)));
      else found.push({ chain, rules: hits });
      if (!seen.has(chain)) {
        seen.add(chain);
        next.push(chain);
      }
    }
    frontier = next;
  }
  return found.reverse();
}

function explainFamily(
  f: 4 | 6,
  fam: DesiredFamilyFilter,
  ipsets: DesiredFilter['ipsets'],
  tap: string,
): { chains: ExplainedChain[]; ipsets: ExplainedIpset[] } {
  const chains: ExplainedChain[] = [];
  const sets: ExplainedIpset[] = [];
  const filter = fam.filter.chains;
  const egress = chainNames.endpointOut(tap);
  const ingress = chainNames.endpointIn(tap);
  if (!filter.has(egress) && !filter.has(ingress)) return { chains, ipsets: sets };
  const raw = fam.raw.chains.get('calyx-PREROUTING');
  if (raw)
    chains.push({
      family: f,
      table: 'raw',
      chain: 'calyx-PREROUTING',
      role: `anti-spoofing (hooked: PREROUTING ${fam.raw.hooks.get('PREROUTING') ?? ''})`.trim(),
      rules: [...raw],
      partial: false,
    });
  for (const [target, dir] of [
    [egress, 'from'],
    [ingress, 'to'],
  ] as const) {
    for (const step of pathTo(filter, target)) {
      const hook = [...fam.filter.hooks].find(([, rule]) => jumpsTo(rule, step.chain));
      chains.push({
        family: f,
        table: 'filter',
        chain: step.chain,
        role: `dispatch of traffic ${dir} the endpoint${hook ? ` (hooked: ${hook[0]} ${hook[1]})` : ''}`,
        rules: step.rules,
        partial: (filter.get(step.chain)?.length ?? 0) !== step.rules.length,
      });
    }
  }
  const groups = new Set<string>();
  for (const [chain, role] of [
    [egress, 'traffic from the endpoint (egress rules)'],
    [ingress, 'traffic to the endpoint (ingress rules)'],
  ] as const) {
    const rules = filter.get(chain);
    if (!rules) continue;
    chains.push({ family: f, table: 'filter', chain, role, rules: [...rules], partial: false });
    for (const r of rules) {
      const m = / -j (calyx-s[ie]-[0-9a-f]+)$/.exec(` ${r}`);
      if (m) groups.add(m[1]!);
    }
  }
  const remoteSets = new Set<string>();
  for (const g of [...groups].sort()) {
    const rules = filter.get(g) ?? [];
    chains.push({
      family: f,
      table: 'filter',
      chain: g,
      role: `security group ${g.startsWith('calyx-si-') ? 'ingress' : 'egress'} rules`,
      rules: [...rules],
      partial: false,
    });
    for (const r of rules) for (const m of r.matchAll(/--match-set (\S+)/g)) remoteSets.add(m[1]!);
  }
  const sources = ipsets.get(chainNames.sources(f));
  if (sources)
    sets.push({
      name: chainNames.sources(f),
      family: f,
      type: sources.type,
      role: 'addresses each interface may send from (anti-spoofing)',
      members: sources.members.filter((m) => m.endsWith(`,${tap}`)),
      partial: true,
    });
  for (const name of [...remoteSets].sort()) {
    const s = ipsets.get(name);
    if (s)
      sets.push({
        name,
        family: f,
        type: s.type,
        role: 'members of a remote security group',
        members: [...s.members],
        partial: false,
      });
  }
  return { chains, ipsets: sets };
}

function familyOf(address: string): 4 | 6 {
  return parseIP(address).family;
}

function explainPeer(peer: DesiredBgpPeer, addresses: readonly string[]): ExplainedPeer {
  const mine = addresses.filter((a) => familyOf(a) === peer.family);
  const base = { peer: peer.name, neighbor: peer.neighborAddress, family: peer.family };
  switch (peer.export.kind) {
    case 'none':
      return { ...base, advertised: [], why: 'this peer is told nothing' };
    case 'endpoints':
    case 'endpoints-and-reflected':
      return {
        ...base,
        advertised: mine,
        why: mine.length ? 'endpoint routes' : `no IPv${peer.family} address`,
      };
    case 'prefixes': {
      const nets = peer.export.prefixes.map((p) => parseCidr(p));
      const inside = mine.filter((a) => nets.some((n) => cidrContains(n, parseIP(a))));
      return {
        ...base,
        advertised: inside,
        why: inside.length
          ? 'inside an advertised pool'
          : `only ${peer.export.prefixes.join(', ') || 'no prefixes'} (advertised pools)`,
      };
    }
  }
}

/** Routes, iptables chains and ipsets, and BIRD configuration the endpoint's host computes for it. */
export function explainEndpoint(
  view: ResourceView,
  endpoint: Endpoint,
  status: EndpointStatus | null,
  opts: ExplainOptions = {},
): EndpointExplanation {
  const host = endpoint.host;
  const out: EndpointExplanation = {
    endpoint,
    host,
    status,
    routes: null,
    gateways: [],
    iptables: [],
    ipsets: [],
    bgp: { config: null, birdConf: null, peers: [] },
    notes: [],
  };
  if (host === null) {
    out.notes.push('not bound to a host: no host programs anything for it');
    return out;
  }
  const reported = status?.endpointRevision;
  if (
    reported !== undefined &&
    opts.endpointRevision !== undefined &&
    BigInt(reported) < opts.endpointRevision
  )
    out.notes.push(
      `status is stale: reported about revision ${reported}, the endpoint is at ${opts.endpointRevision} (its agent has not caught up yet)`,
    );
  // The view must hold this endpoint as stored (the caller read it at the same revision).
  const withEp: ResourceView = {
    ...view,
    endpoints: new Map([...view.endpoints, [endpoint.id, endpoint]]),
  };
  const routes = computeRoutes(withEp, host);
  out.routes = routes.endpoints.find((e) => e.interfaceName === endpoint.interfaceName) ?? null;
  if (!endpoint.adminStateUp) out.notes.push('admin state down: no routes, its chains drop');
  const subnetGateways = new Set(
    endpoint.fixedIps
      .map((f) => withEp.subnets.get(f.subnetId)?.gatewayIp)
      .filter((g): g is string => typeof g === 'string'),
  );
  out.gateways = routes.gateways.filter((g) => subnetGateways.has(g));
  for (const f of endpoint.fixedIps)
    if (!withEp.subnets.has(f.subnetId))
      out.notes.push(`subnet ${f.subnetId} of ${f.ipAddress} does not exist`);

  const filter = new PolicyCompiler().compute(withEp, host);
  for (const [f, fam] of [
    [4, filter.v4],
    [6, filter.v6],
  ] as const) {
    const r = explainFamily(f, fam, filter.ipsets, endpoint.interfaceName);
    out.iptables.push(...r.chains);
    out.ipsets.push(...r.ipsets);
  }
  if (!endpoint.portSecurityEnabled)
    out.notes.push('port security disabled: no anti-spoofing and no security groups');

  const bgp = computeBgp(withEp, host, { routeProtocol: opts.routeProtocol ?? 80 });
  out.bgp.config = bgp;
  if (!bgp) {
    out.notes.push(`no Host resource with a router id for ${host}: the host runs no BGP`);
    return out;
  }
  try {
    out.bgp.birdConf = renderBirdConfig({
      ...bgp,
      ...(opts.birdStateDir ? { logFile: `${opts.birdStateDir.replace(/\/$/, '')}/bird.log` } : {}),
    });
  } catch (e) {
    out.notes.push(`BIRD configuration cannot be rendered: ${(e as Error).message}`);
  }
  const advertised = out.routes ? out.routes.addresses : [];
  out.bgp.peers = bgp.peers.map((p) => explainPeer(p, advertised));
  if (advertised.length && !bgp.peers.length)
    out.notes.push('the host has no BGP peers: its endpoint routes go nowhere');
  return out;
}

import type { Endpoint, EndpointStatus, Host, HostStatus } from '@calyx/model';
import type { DesiredBgpPeer } from '@calyx/calc';
import { birdProtocolNameOf, type BirdProtocolStatus } from '@calyx/dataplane-bird';
import { renderFields, renderTable } from './format/table.js';

// What `node status` reports, computed from what was read (pure), and its rendering.

export interface AgentState {
  /** The agent's liveness record exists (it is kept on a lease: gone when the agent dies). */
  alive: boolean;
  inSync: boolean | null;
  agent: string | null;
  version: string | null;
  startedAt: string | null;
  updatedAt: string | null;
  /** Seconds since the agent last updated its record. */
  ageSeconds: number | null;
}

export interface EndpointState {
  id: string;
  interfaceName: string;
  /** From the agent's EndpointStatus record; `unknown` when it wrote none. */
  status: 'up' | 'down' | 'error' | 'unknown';
  reason: string;
  updatedAt: string | null;
}

export interface BgpSession {
  peer: string;
  neighbor: string;
  /** BIRD's protocol name for the peer. */
  protocol: string;
  /** BIRD's state (`up`, `start`, …), or `missing` when BIRD has no such protocol. */
  state: string;
  info: string;
  established: boolean;
}

export interface BgpState {
  /** The BIRD control socket asked. */
  socket: string;
  /** Why BIRD could not be asked. */
  error: string | null;
  sessions: BgpSession[];
  /** BGP protocols BIRD runs that the host's computed configuration does not have. */
  unexpected: { protocol: string; state: string; info: string }[];
}

export interface NodeStatus {
  host: string;
  /** A Host resource exists for it. */
  registered: boolean;
  ipv4Address: string | null;
  ipv6Address: string | null;
  agent: AgentState;
  endpoints: EndpointState[];
  /** Null when BIRD was not asked (no --bird-state-dir). */
  bgp: BgpState | null;
  /** Everything that is wrong; empty when healthy. */
  problems: string[];
  healthy: boolean;
}

export interface NodeStatusInput {
  host: string;
  hostResource: Host | undefined;
  hostStatus: HostStatus | undefined;
  endpoints: readonly Endpoint[];
  endpointStatuses: readonly EndpointStatus[];
  /** The BGP sessions calc computes for the host. */
  expectedPeers: readonly Pick<DesiredBgpPeer, 'name' | 'family' | 'neighborAddress'>[];
  bird?:
    | { socket: string; protocols: readonly BirdProtocolStatus[] }
    | { socket: string; error: string };
  now: Date;
}

export function buildNodeStatus(i: NodeStatusInput): NodeStatus {
  const s = i.hostStatus;
  const agent: AgentState = {
    alive: s !== undefined,
    inSync: s?.inSync ?? null,
    agent: s?.agent ?? null,
    version: s?.version ?? null,
    startedAt: s?.startedAt ?? null,
    updatedAt: s?.updatedAt ?? null,
    ageSeconds: s
      ? Math.max(0, Math.round((i.now.getTime() - Date.parse(s.updatedAt)) / 1000))
      : null,
  };
  const statusById = new Map(i.endpointStatuses.map((e) => [e.endpointId, e]));
  const endpoints: EndpointState[] = [...i.endpoints]
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
    .map((e) => {
      const st = statusById.get(e.id);
      return {
        id: e.id,
        interfaceName: e.interfaceName,
        status: st?.status ?? 'unknown',
        reason: st?.reason ?? '',
        updatedAt: st?.updatedAt ?? null,
      };
    });
  const problems: string[] = [];
  if (!i.hostResource) problems.push(`no Host resource for ${i.host}: BGP is not configured`);
  if (!agent.alive) problems.push('agent: no liveness record (not running, or its lease expired)');
  else if (agent.inSync === false) problems.push('agent: not in sync with the datastore');
  for (const e of endpoints)
    if (e.status === 'error') problems.push(`endpoint ${e.id}: error ${e.reason}`.trim());
  let bgp: BgpState | null = null;
  if (i.bird) {
    bgp = { socket: i.bird.socket, error: null, sessions: [], unexpected: [] };
    if ('error' in i.bird) {
      bgp.error = i.bird.error;
      problems.push(`BIRD: ${i.bird.error}`);
    } else {
      const byName = new Map(i.bird.protocols.map((p) => [p.name, p]));
      const expected = new Set<string>();
      for (const peer of i.expectedPeers) {
        const protocol = birdProtocolNameOf(peer);
        expected.add(protocol);
        const p = byName.get(protocol);
        bgp.sessions.push({
          peer: peer.name,
          neighbor: peer.neighborAddress,
          protocol,
          state: p?.state ?? 'missing',
          info: p?.info ?? '',
          established: p?.established ?? false,
        });
      }
      for (const p of i.bird.protocols)
        if (p.proto === 'BGP' && !expected.has(p.name))
          bgp.unexpected.push({ protocol: p.name, state: p.state, info: p.info });
      for (const x of bgp.sessions)
        if (!x.established)
          problems.push(
            `BGP session with ${x.peer} (${x.neighbor}) is not established: ${x.state} ${x.info}`.trim(),
          );
    }
  }
  return {
    host: i.host,
    registered: i.hostResource !== undefined,
    ipv4Address: i.hostResource?.ipv4Address ?? null,
    ipv6Address: i.hostResource?.ipv6Address ?? null,
    agent,
    endpoints,
    bgp,
    problems,
    healthy: problems.length === 0,
  };
}

function age(seconds: number | null): string {
  if (seconds === null) return '-';
  if (seconds < 120) return `${seconds}s ago`;
  if (seconds < 7200) return `${Math.round(seconds / 60)}m ago`;
  return `${Math.round(seconds / 3600)}h ago`;
}

function agentText(a: AgentState): string {
  if (!a.alive) return 'dead (no liveness record)';
  return `alive, ${a.inSync ? 'in sync' : 'NOT in sync'} (${a.agent ?? 'agent'}${
    a.version ? ` ${a.version}` : ''
  }, updated ${age(a.ageSeconds)})`;
}

export function renderNodeStatus(s: NodeStatus): string {
  const counts = (['up', 'down', 'error', 'unknown'] as const)
    .map((k) => [k, s.endpoints.filter((e) => e.status === k).length] as const)
    .filter(([, n]) => n > 0)
    .map(([k, n]) => `${n} ${k}`);
  const out = [
    renderFields([
      ['host', s.host],
      [
        'registered',
        s.registered ? `yes (${[s.ipv4Address, s.ipv6Address].filter(Boolean).join(', ')})` : 'no',
      ],
      ['agent', agentText(s.agent)],
      ['endpoints', `${s.endpoints.length}${counts.length ? ` (${counts.join(', ')})` : ''}`],
      [
        'bgp',
        s.bgp === null
          ? 'not queried (pass --bird-state-dir)'
          : s.bgp.error
            ? `BIRD at ${s.bgp.socket} did not answer`
            : `${s.bgp.sessions.filter((x) => x.established).length}/${s.bgp.sessions.length} sessions established`,
      ],
      ['health', s.healthy ? 'ok' : `${s.problems.length} problem(s)`],
    ]),
  ];
  if (s.bgp && !s.bgp.error && (s.bgp.sessions.length || s.bgp.unexpected.length)) {
    out.push(
      renderTable(
        ['PEER', 'NEIGHBOR', 'PROTOCOL', 'STATE', 'INFO'],
        [
          ...s.bgp.sessions.map((x) => [x.peer, x.neighbor, x.protocol, x.state, x.info]),
          ...s.bgp.unexpected.map((x) => ['(unexpected)', '-', x.protocol, x.state, x.info]),
        ],
      ),
    );
  }
  if (s.endpoints.length)
    out.push(
      renderTable(
        ['ENDPOINT', 'INTERFACE', 'STATUS', 'UPDATED', 'REASON'],
        s.endpoints.map((e) => [e.id, e.interfaceName, e.status, e.updatedAt, e.reason]),
      ),
    );
  if (s.problems.length) out.push(`${s.problems.map((p) => `problem: ${p}`).join('\n')}\n`);
  return out.join('\n');
}

/** One line per host (node status without a host). */
export function renderNodeList(list: readonly NodeStatus[]): string {
  return renderTable(
    [
      'HOST',
      'REGISTERED',
      'AGENT',
      'IN-SYNC',
      'UPDATED',
      'ENDPOINTS',
      'UP',
      'DOWN',
      'ERROR',
      'HEALTH',
    ],
    list.map((s) => [
      s.host,
      s.registered,
      s.agent.alive ? 'alive' : 'dead',
      s.agent.inSync,
      age(s.agent.ageSeconds).replace(' ago', ''),
      s.endpoints.length,
      s.endpoints.filter((e) => e.status === 'up').length,
      s.endpoints.filter((e) => e.status === 'down').length,
      s.endpoints.filter((e) => e.status === 'error').length,
      s.healthy ? 'ok' : 'problems',
    ]),
  );
}

import type { EndpointExplanation } from '../explain.js';
import { renderFields, renderTable } from './table.js';

/** `endpoint explain` as text: routes, iptables-save style chains and ipsets, BGP, bird.conf. */
export function renderExplanation(x: EndpointExplanation, routeProtocol = 80): string {
  const e = x.endpoint;
  const parts: string[] = [];
  parts.push(
    renderFields([
      ['endpoint', `${e.id} (${e.interfaceName}, ${e.mac})`],
      ['host', x.host ?? '(unbound)'],
      ['addresses', e.fixedIps.map((f) => f.ipAddress)],
      ['groups', e.securityGroupIds],
      [
        'status',
        x.status
          ? `${x.status.status}${x.status.reason ? ` (${x.status.reason})` : ''}, reported ${x.status.updatedAt}`
          : 'not reported by an agent',
      ],
    ]),
  );
  if (x.host !== null) {
    const routes = ['== routes'];
    if (x.routes)
      for (const a of x.routes.addresses)
        routes.push(
          `${a} dev ${x.routes.interfaceName} scope link proto ${routeProtocol}  (neighbour ${x.routes.mac} permanent)`,
        );
    else routes.push('(none)');
    for (const g of x.gateways) routes.push(`gateway ${g} on calyx-gw (the host answers ARP/NDP)`);
    parts.push(`${routes.join('\n')}\n`);

    const ipt = ['== iptables'];
    for (const c of x.iptables) {
      ipt.push(
        `# IPv${c.family} ${c.table} ${c.chain}: ${c.role}${c.partial ? ' (only rules on its path)' : ''}`,
      );
      if (!c.rules.length) ipt.push(`# (empty)`);
      for (const r of c.rules) ipt.push(`-A ${c.chain} ${r}`);
    }
    if (x.iptables.length === 0) ipt.push('(no chains)');
    parts.push(`${ipt.join('\n')}\n`);

    const sets = ['== ipsets'];
    for (const s of x.ipsets) {
      sets.push(
        `# IPv${s.family} ${s.name} (${s.type}): ${s.role}${s.partial ? " (only this endpoint's members)" : ''}`,
      );
      for (const m of s.members) sets.push(`add ${s.name} ${m}`);
    }
    if (x.ipsets.length === 0) sets.push('(none)');
    parts.push(`${sets.join('\n')}\n`);

    const bgp = ['== bgp'];
    if (x.bgp.config) {
      bgp.push(
        `router id ${x.bgp.config.routerId}; ${x.bgp.config.peers.length} peer(s); endpoint routes learned from kernel protocol ${x.bgp.config.endpointRouteProtocol ?? '-'}`,
      );
      if (x.bgp.peers.length)
        bgp.push(
          renderTable(
            ['PEER', 'NEIGHBOR', 'ADVERTISED', 'WHY'],
            x.bgp.peers.map((p) => [p.peer, p.neighbor, p.advertised, p.why]),
          ).trimEnd(),
        );
    } else bgp.push('(no BGP on this host)');
    parts.push(`${bgp.join('\n')}\n`);
    if (x.bgp.birdConf) parts.push(`== bird.conf\n${x.bgp.birdConf.trimEnd()}\n`);
  }
  if (x.notes.length) parts.push(`${x.notes.map((n) => `note: ${n}`).join('\n')}\n`);
  return parts.join('\n');
}

import { formatIP, parseIP } from '@calyx/netaddr';
import type { LinkState } from './plan.js';

// Parsers for `ip -json` output. Pure: unit-tested with captured output.

interface JsonLink {
  ifindex: number;
  ifname: string;
  flags?: string[];
}

export function parseLinks(json: string): Map<string, LinkState> {
  const out = new Map<string, LinkState>();
  for (const l of JSON.parse(json || '[]') as JsonLink[]) {
    out.set(l.ifname, { name: l.ifname, ifindex: l.ifindex, up: (l.flags ?? []).includes('UP') });
  }
  return out;
}

interface JsonRoute {
  dst: string;
  dev?: string;
}

/** Host routes (`ip -json route show proto N`): dst (canonical, without /32 or /128) → dev. */
export function parseHostRoutes(
  json: string,
  accept: (dev: string) => boolean,
): Map<string, string> {
  const out = new Map<string, string>();
  for (const r of JSON.parse(json || '[]') as JsonRoute[]) {
    if (!r.dev || !accept(r.dev)) continue;
    const dst = r.dst.replace(/\/(32|128)$/, '');
    if (dst.includes('/')) continue; // not a host route: not ours to manage
    try {
      out.set(formatIP(parseIP(dst)), r.dev);
    } catch {
      /* 'default' and other non-addresses */
    }
  }
  return out;
}

interface JsonNeigh {
  dst: string;
  dev?: string;
  lladdr?: string;
  state?: string[];
}

/** Permanent neighbours on accepted devices: `dev|ip` → MAC. */
export function parseNeighbours(
  json: string,
  accept: (dev: string) => boolean,
): Map<string, string> {
  const out = new Map<string, string>();
  for (const n of JSON.parse(json || '[]') as JsonNeigh[]) {
    if (!n.dev || !n.lladdr || !accept(n.dev) || !(n.state ?? []).includes('PERMANENT')) continue;
    out.set(`${n.dev}|${formatIP(parseIP(n.dst))}`, n.lladdr.toLowerCase());
  }
  return out;
}

/** Proxy NDP entries (`ip -6 -json neigh show proxy`) on accepted devices: `dev|ip`. */
export function parseProxies(json: string, accept: (dev: string) => boolean): Set<string> {
  const out = new Set<string>();
  for (const n of JSON.parse(json || '[]') as JsonNeigh[]) {
    if (n.dev && accept(n.dev)) out.add(`${n.dev}|${formatIP(parseIP(n.dst))}`);
  }
  return out;
}

interface JsonAddr {
  addr_info?: { family: string; local: string; prefixlen: number }[];
}

/** Host addresses of one interface (`ip -json addr show dev X`), canonical, link-local excluded. */
export function parseAddresses(json: string): Set<string> {
  const out = new Set<string>();
  for (const i of JSON.parse(json || '[]') as JsonAddr[]) {
    for (const a of i.addr_info ?? []) {
      if (a.family === 'inet6' && a.local.toLowerCase().startsWith('fe80:')) continue;
      out.add(formatIP(parseIP(a.local)));
    }
  }
  return out;
}

/** `grep -H . files…` output (`/proc/sys/…/<tap>/<name>:value`) → path → value. */
export function parseGrepH(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const i = line.lastIndexOf(':');
    if (i > 0) out.set(line.slice(0, i), line.slice(i + 1).trim());
  }
  return out;
}

export interface MonitorLinkEvent {
  deleted: boolean;
  ifindex: number;
  name: string;
  up: boolean;
}

/** One line of `ip -o monitor link`. */
export function parseMonitorLine(line: string): MonitorLinkEvent | undefined {
  const m = /^(Deleted )?(\d+): ([^:@\s]+)(?:@[^:\s]*)?: <([^>]*)>/.exec(line);
  if (!m) return undefined;
  return {
    deleted: m[1] !== undefined,
    ifindex: Number(m[2]),
    name: m[3]!,
    up: m[4]!.split(',').includes('UP'),
  };
}

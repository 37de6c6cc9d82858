import { hashOf } from './hash.js';
import type { IpsetType } from './types.js';

/** One of our rules in a kernel built-in chain. */
export interface HookRule {
  /** Index among all rules of the built-in chain (0 = first). */
  position: number;
  hash: string;
  /** The rule as iptables-save printed it (after `-A CHAIN `): deletable with `-D CHAIN text`. */
  text: string;
}

export interface TableActual {
  /** Our chains → the hash of each rule ('' for a rule without one: not ours, or altered). */
  chains: Map<string, string[]>;
  /** Built-in chain → our rules in it (hash-commented, or jumping to one of our chains). */
  hooks: Map<string, HookRule[]>;
  /**
   * Stale chains we could not delete (someone else's rule still jumps to them): flushed, and not
   * tried again until the next read.
   */
  lingering: Set<string>;
}

/** Table name → what we own in it. */
export type FamilyActual = Map<string, TableActual>;

export function emptyTable(): TableActual {
  return { chains: new Map(), hooks: new Map(), lingering: new Set() };
}

/**
 * Reads `iptables-save` output: our chains (by prefix) with their rule hashes, and our rules
 * in the built-in chains with their positions. Everything else is someone else's and ignored.
 */
export function parseIptablesSave(text: string, prefix: string): FamilyActual {
  const out: FamilyActual = new Map();
  let table: TableActual | undefined;
  let builtins = new Set<string>();
  let positions = new Map<string, number>();
  const jumpsToOurs = new RegExp(`(?:^|\\s)-[jg] ${escapeRe(prefix)}`);
  for (const line of text.split('\n')) {
    const c = line.charCodeAt(0);
    if (c === 45 /* - */) {
      if (!table || !line.startsWith('-A ')) continue;
      const sp = line.indexOf(' ', 3);
      const chain = line.slice(3, sp < 0 ? undefined : sp);
      const rule = sp < 0 ? '' : line.slice(sp + 1);
      const ours = table.chains.get(chain);
      if (ours) {
        ours.push(hashOf(rule));
      } else if (builtins.has(chain)) {
        const pos = positions.get(chain) ?? 0;
        positions.set(chain, pos + 1);
        const hash = hashOf(rule);
        if (hash || jumpsToOurs.test(rule)) {
          let list = table.hooks.get(chain);
          if (!list) table.hooks.set(chain, (list = []));
          list.push({ position: pos, hash, text: rule });
        }
      }
    } else if (c === 58 /* : */) {
      if (!table) continue;
      // `:NAME POLICY [packets:bytes]`; user-defined chains have policy `-`.
      const [decl = '', policy = '-'] = line.split(' ', 2);
      const name = decl.slice(1);
      if (name.startsWith(prefix)) table.chains.set(name, []);
      else if (policy !== '-') builtins.add(name);
    } else if (c === 42 /* * */) {
      table = emptyTable();
      out.set(line.slice(1).trim(), table);
      builtins = new Set();
      positions = new Map();
    }
  }
  // Tables in which we own nothing are of no interest.
  for (const [name, t] of out) if (t.chains.size === 0 && t.hooks.size === 0) out.delete(name);
  return out;
}

export interface IpsetActual {
  type: IpsetType | string;
  family: 4 | 6;
  members: Set<string>;
}

/** Members as we compare them: host addresses written as /32 or /128, lower case. */
export function normalizeMember(m: string): string {
  const comma = m.indexOf(',');
  const addr = (comma < 0 ? m : m.slice(0, comma)).toLowerCase();
  const rest = comma < 0 ? '' : m.slice(comma);
  if (addr.includes('/')) return addr + rest;
  return `${addr}/${addr.includes(':') ? 128 : 32}${rest}`;
}

/** Reads `ipset save` output: our sets (by prefix), their type, family and members. */
export function parseIpsetSave(text: string, prefix: string): Map<string, IpsetActual> {
  const out = new Map<string, IpsetActual>();
  for (const line of text.split('\n')) {
    if (line.startsWith('add ')) {
      const sp = line.indexOf(' ', 4);
      const set = out.get(line.slice(4, sp));
      if (!set) continue;
      const end = line.indexOf(' ', sp + 1);
      set.members.add(normalizeMember(line.slice(sp + 1, end < 0 ? undefined : end)));
    } else if (line.startsWith('create ')) {
      const [, name = '', type = '', ...opts] = line.split(' ');
      if (!name.startsWith(prefix)) continue;
      const fi = opts.indexOf('family');
      out.set(name, { type, family: opts[fi + 1] === 'inet6' ? 6 : 4, members: new Set() });
    }
  }
  return out;
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

import { InvalidNameError } from '@calyx/dataplane';
import { hookHash, ruleHashes, withHash } from './hash.js';
import { assertChainName, assertIpsetName, assertRule } from './names.js';
import { emptyTable, normalizeMember, type FamilyActual, type IpsetActual } from './save.js';
import type {
  ChainRules,
  ChangeTrackingChains,
  FamilyTables,
  IpsetSpec,
  TableSpec,
} from './types.js';

/** Per table, per chain: the rules array last written, to skip an unchanged chain by identity. */
export type Written = Map<string, Map<string, ChainRules>>;

/** Per table: the change-tracking chains map last applied and its generation then. */
export type Cursors = Map<string, { map: object; generation: number }>;

function tracking(m: ReadonlyMap<string, ChainRules>): ChangeTrackingChains | undefined {
  const t = m as Partial<ChangeTrackingChains>;
  return typeof t.changedSince === 'function' && typeof t.generation === 'number'
    ? (m as ChangeTrackingChains)
    : undefined;
}

export interface FamilyPlan {
  /** iptables-restore --noflush input; '' when nothing is to change. */
  input: string;
  /** The same without deleting stale chains (they are flushed instead). */
  inputKeepingStale: string;
  chainsWritten: number;
  rulesWritten: number;
  chainsDeleted: number;
  hooksFixed: number;
  /** Records the plan as applied (`keptStale`: the restore without deletions was used). */
  commit(keptStale?: boolean): void;
}

const EMPTY: TableSpec = { chains: new Map(), hooks: new Map() };

function sameList(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function assertOurs(kind: string, name: string, prefix: string): void {
  assertChainName(name);
  if (!name.startsWith(prefix))
    throw new InvalidNameError(kind, name, `must start with the chain prefix '${prefix}'`);
}

/**
 * The difference between one family's desired tables and what is there, as one
 * iptables-restore transaction: chains whose rule hashes differ are declared (which flushes
 * them) and refilled, stale chains of ours flushed and deleted, hook rules that are missing,
 * duplicated, altered or no longer first are deleted and inserted at position 1. Chains and
 * rules are validated here, before anything runs.
 */
/**
 * Each chain's rule hashes and its `-A` lines, computed once per rules array. The programmer
 * fills it while its first read of the kernel is in flight, so the text of a cold start is
 * ready when the read returns.
 */
export class ChainText {
  private readonly cache = new WeakMap<
    ChainRules,
    Map<string, { hashes: string[]; lines: string[] }>
  >();

  of(name: string, rules: ChainRules): { hashes: string[]; lines: string[] } {
    let byName = this.cache.get(rules);
    if (!byName) this.cache.set(rules, (byName = new Map()));
    let t = byName.get(name);
    if (!t) {
      const hashes = ruleHashes(name, rules);
      const lines = new Array<string>(rules.length);
      for (let i = 0; i < rules.length; i++)
        lines[i] = `-A ${name} ${withHash(rules[i]!, hashes[i]!)}`;
      byName.set(name, (t = { hashes, lines }));
    }
    return t;
  }

  prewarm(desired: FamilyTables): void {
    for (const t of Object.values(desired) as (TableSpec | undefined)[])
      for (const [name, rules] of t?.chains ?? []) this.of(name, rules);
  }
}

/** Throws InvalidNameError for any bad chain name, hook or rule of a family's tables. */
export function validateTables(desired: FamilyTables, prefix: string): void {
  for (const t of Object.values(desired) as (TableSpec | undefined)[]) {
    for (const [name, rules] of t?.chains ?? []) {
      assertOurs('iptables chain', name, prefix);
      for (const r of rules) assertRule(name, r);
    }
    for (const [builtin, rule] of t?.hooks ?? []) {
      assertChainName(builtin);
      assertRule(builtin, rule);
    }
  }
}

export function planFamily(
  desired: FamilyTables,
  actual: FamilyActual,
  written: Written,
  prefix: string,
  cursors: Cursors = new Map(),
  text: ChainText = new ChainText(),
): FamilyPlan {
  const blocks: { head: string[]; body: string[]; tail: string[]; table: string }[] = [];
  const commits: ((keptStale: boolean) => void)[] = [];
  let chainsWritten = 0;
  let rulesWritten = 0;
  let chainsDeleted = 0;
  let hooksFixed = 0;
  const tables = new Set<string>([...Object.keys(desired), ...actual.keys()]);
  for (const table of [...tables].sort()) {
    const d = (desired as Record<string, TableSpec | undefined>)[table] ?? EMPTY;
    const a = actual.get(table) ?? emptyTable();
    // A lingering chain that is wanted again is ours to fill.
    for (const name of a.lingering) if (d.chains.has(name)) a.lingering.delete(name);
    let w = written.get(table);
    const head: string[] = [];
    const body: string[] = [];
    const tail: string[] = [];
    const writes: { name: string; rules: ChainRules; hashes: string[]; lines: string[] }[] = [];
    const seen: { name: string; rules: ChainRules }[] = [];
    // With a change-tracking map seen before, only the names it logged can differ.
    const tracked = tracking(d.chains);
    const cursor = cursors.get(table);
    const logged =
      tracked && cursor?.map === d.chains ? tracked.changedSince(cursor.generation) : undefined;
    const candidates: Iterable<[string, ChainRules]> = logged
      ? [...new Set(logged)].flatMap((n) => {
          const rules = d.chains.get(n);
          return rules ? [[n, rules] as [string, ChainRules]] : [];
        })
      : d.chains;
    for (const [name, rules] of candidates) {
      if (w?.get(name) === rules && a.chains.has(name)) continue;
      const cur = a.chains.get(name);
      if (cur && cur.length === rules.length && sameList(cur, text.of(name, rules).hashes)) {
        seen.push({ name, rules });
        continue;
      }
      assertOurs('iptables chain', name, prefix);
      for (const r of rules) assertRule(name, r);
      const { hashes, lines } = text.of(name, rules);
      writes.push({ name, rules, hashes, lines });
    }
    const deletes: string[] = [];
    for (const name of logged ? new Set(logged) : a.chains.keys())
      if (!d.chains.has(name) && a.chains.has(name) && !a.lingering.has(name)) deletes.push(name);
    const hookFixes: { builtin: string; remove: string[]; insert: string; hash: string }[] = [];
    for (const [builtin, rule] of d.hooks) {
      const hash = hookHash(table, builtin, rule);
      const cur = a.hooks.get(builtin) ?? [];
      if (cur.length === 1 && cur[0]!.position === 0 && cur[0]!.hash === hash) continue;
      assertChainName(builtin);
      assertRule(builtin, rule);
      hookFixes.push({
        builtin,
        remove: cur.map((h) => h.text),
        insert: withHash(rule, hash),
        hash,
      });
    }
    for (const [builtin, cur] of a.hooks)
      if (!d.hooks.has(builtin) && cur.length)
        hookFixes.push({ builtin, remove: cur.map((h) => h.text), insert: '', hash: '' });

    for (const { name, rules, lines } of writes) {
      head.push(`:${name} - [0:0]`);
      for (const l of lines) body.push(l);
      rulesWritten += rules.length;
    }
    for (const f of hookFixes) {
      for (const text of f.remove) body.push(`-D ${f.builtin} ${text}`);
      if (f.insert) body.push(`-I ${f.builtin} 1 ${f.insert}`);
    }
    for (const name of deletes) {
      head.push(`:${name} - [0:0]`);
      tail.push(`-X ${name}`);
    }
    chainsWritten += writes.length;
    chainsDeleted += deletes.length;
    hooksFixed += hookFixes.length;
    if (head.length || body.length) blocks.push({ head, body, tail, table });
    const nextCursor = tracked ? { map: d.chains, generation: tracked.generation } : undefined;
    commits.push(() => {
      if (nextCursor) cursors.set(table, nextCursor);
      else cursors.delete(table);
    });
    if (writes.length || deletes.length || hookFixes.length || seen.length) {
      commits.push((keptStale) => {
        if (!actual.has(table)) actual.set(table, a);
        if (!w) written.set(table, (w = new Map()));
        for (const { name, rules, hashes } of writes) {
          a.chains.set(name, hashes);
          w.set(name, rules);
        }
        for (const { name, rules } of seen) w.set(name, rules);
        for (const name of deletes) {
          if (keptStale) {
            a.chains.set(name, []);
            a.lingering.add(name);
          } else a.chains.delete(name);
          w.delete(name);
        }
        for (const f of hookFixes) {
          if (f.insert) a.hooks.set(f.builtin, [{ position: 0, hash: f.hash, text: f.insert }]);
          else a.hooks.delete(f.builtin);
        }
      });
    }
  }
  const render = (withDeletes: boolean) =>
    blocks
      .map((b) =>
        [`*${b.table}`, ...b.head, ...b.body, ...(withDeletes ? b.tail : []), 'COMMIT'].join('\n'),
      )
      .join('\n') + (blocks.length ? '\n' : '');
  return {
    input: render(true),
    inputKeepingStale: render(false),
    chainsWritten,
    rulesWritten,
    chainsDeleted,
    hooksFixed,
    commit: (keptStale = false) => {
      for (const c of commits) c(keptStale);
    },
  };
}

export interface IpsetPlan {
  /** `ipset restore` lines to run before the iptables restores (creations, updates). */
  pre: string[];
  /** Whether `pre` only changes existing sets, so it may run alongside the iptables restores. */
  preIsUpdateOnly: boolean;
  /** Lines to run after them (destroying sets no rule refers to any more). */
  post: string[];
  created: number;
  swapped: number;
  membersAdded: number;
  membersRemoved: number;
  destroyed: number;
  /** Sets that exist with another type or family: left alone, reported. */
  conflicts: string[];
  commit(): void;
}

const MEMBER = /^[0-9a-f:.]+\/\d{1,3}(,[A-Za-z0-9_.-]{1,15})?$/;
const MAXELEM = 1 << 20;

function createLine(name: string, spec: IpsetSpec): string {
  return `create ${name} ${spec.type} family ${spec.family === 6 ? 'inet6' : 'inet'} hashsize 1024 maxelem ${MAXELEM}`;
}

/**
 * The difference between desired and actual ipsets. A new set is created and filled; a set
 * with a few changed members gets `add`/`del` (each atomic, the set is never emptied); a set
 * whose content changes wholesale is filled as a temporary set and swapped in atomically.
 */
export function planIpsets(
  desired: ReadonlyMap<string, IpsetSpec>,
  actual: Map<string, IpsetActual>,
  written: Map<string, readonly string[]>,
  prefix: string,
  tmpName: string,
): IpsetPlan {
  const pre: string[] = [];
  const post: string[] = [];
  const commits: (() => void)[] = [];
  const conflicts: string[] = [];
  let created = 0;
  let swapped = 0;
  let membersAdded = 0;
  let membersRemoved = 0;
  let destroyed = 0;
  let preIsUpdateOnly = true;
  assertIpsetName(tmpName);
  if (actual.has(tmpName)) {
    pre.push(`destroy ${tmpName}`);
    commits.push(() => actual.delete(tmpName));
  }
  for (const [name, spec] of desired) {
    const a = actual.get(name);
    if (a && written.get(name) === spec.members) continue;
    const delta = spec.delta;
    if (
      a &&
      delta &&
      written.get(name) === delta.base &&
      a.type === spec.type &&
      a.family === spec.family
    ) {
      // Only what changed since the list last applied: O(change), not O(members).
      const adds = delta.added.map(normalizeMember).filter((m) => !a.members.has(m));
      const dels = delta.removed.map(normalizeMember).filter((m) => a.members.has(m));
      for (const m of [...adds, ...dels])
        if (!MEMBER.test(m))
          throw new InvalidNameError(`member of ipset ${name}`, m, 'prefix[,interface]');
      for (const m of dels) pre.push(`del ${name} ${m}`);
      for (const m of adds) pre.push(`add ${name} ${m}`);
      membersAdded += adds.length;
      membersRemoved += dels.length;
      commits.push(() => {
        for (const m of dels) a.members.delete(m);
        for (const m of adds) a.members.add(m);
        written.set(name, spec.members);
      });
      continue;
    }
    if (!name.startsWith(prefix) || name === tmpName)
      throw new InvalidNameError(
        'ipset',
        name,
        `must start with '${prefix}' and not be ${tmpName}`,
      );
    assertIpsetName(name);
    const members = spec.members.map(normalizeMember);
    for (const m of members)
      if (!MEMBER.test(m))
        throw new InvalidNameError(`member of ipset ${name}`, m, 'prefix[,interface]');
    const want = new Set(members);
    if (!a) {
      preIsUpdateOnly = false;
      pre.push(createLine(name, spec));
      for (const m of want) pre.push(`add ${name} ${m}`);
      created++;
      membersAdded += want.size;
      commits.push(() => {
        actual.set(name, { type: spec.type, family: spec.family, members: want });
        written.set(name, spec.members);
      });
      continue;
    }
    if (a.type !== spec.type || a.family !== spec.family) {
      conflicts.push(
        `${name} is ${a.type} family ${a.family}, wanted ${spec.type} family ${spec.family}`,
      );
      continue;
    }
    const adds: string[] = [];
    const dels: string[] = [];
    for (const m of want) if (!a.members.has(m)) adds.push(m);
    for (const m of a.members) if (!want.has(m)) dels.push(m);
    if (adds.length + dels.length > Math.max(64, want.size / 2)) {
      pre.push(createLine(tmpName, spec));
      for (const m of want) pre.push(`add ${tmpName} ${m}`);
      pre.push(`swap ${tmpName} ${name}`, `destroy ${tmpName}`);
      swapped++;
    } else {
      for (const m of dels) pre.push(`del ${name} ${m}`);
      for (const m of adds) pre.push(`add ${name} ${m}`);
    }
    membersAdded += adds.length;
    membersRemoved += dels.length;
    commits.push(() => {
      a.members = want;
      written.set(name, spec.members);
    });
  }
  for (const name of actual.keys()) {
    if (desired.has(name) || name === tmpName) continue;
    post.push(`destroy ${name}`);
    destroyed++;
    commits.push(() => {
      actual.delete(name);
      written.delete(name);
    });
  }
  return {
    pre,
    preIsUpdateOnly,
    post,
    created,
    swapped,
    membersAdded,
    membersRemoved,
    destroyed,
    conflicts,
    commit: () => {
      for (const c of commits) c();
    },
  };
}

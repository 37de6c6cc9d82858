/** Rules of one chain: what follows `-A <chain>` in iptables-restore input. */
export type ChainRules = readonly string[];

/** Our chains in one table, and the jumps that must come first in the kernel's built-in chains. */
export interface TableSpec {
  /** Chain name → rules. An unchanged chain may keep its array identity: it is then skipped. */
  chains: ReadonlyMap<string, ChainRules>;
  /** Built-in chain (FORWARD, INPUT, PREROUTING, …) → the rule placed first in it. */
  hooks: ReadonlyMap<string, string>;
}

export type TableName = 'filter' | 'raw' | 'nat' | 'mangle';

export type FamilyTables = Partial<Record<TableName, TableSpec>>;

export type IpsetType = 'hash:net' | 'hash:net,iface' | 'hash:ip';

export interface IpsetSpec {
  family: 4 | 6;
  type: IpsetType;
  /** Members as `ipset add` takes them; an unchanged list may keep its array identity. */
  members: readonly string[];
  /**
   * How `members` differs from an earlier list `base`. When `base` is what was last applied,
   * only the delta is written and compared: O(change), not O(members).
   */
  delta?: { base: readonly string[]; added: readonly string[]; removed: readonly string[] };
}

/**
 * A chains map that can tell which names were set or deleted since a generation (calc's
 * `TrackedMap`): an apply then looks at those names only, not at every chain.
 */
export interface ChangeTrackingChains extends ReadonlyMap<string, ChainRules> {
  readonly generation: number;
  changedSince(generation: number): readonly string[] | undefined;
}

/** Everything the iptables programmer owns on a host: both families' tables and the ipsets. */
export interface IptablesDesired {
  v4: FamilyTables;
  v6: FamilyTables;
  ipsets: ReadonlyMap<string, IpsetSpec>;
}

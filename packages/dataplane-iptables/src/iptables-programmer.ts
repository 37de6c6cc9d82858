import { silentLogger, type Logger } from '@calyx/core';
import {
  CommandError,
  type CommandResult,
  type CommandRunner,
  type Programmer,
  type ReconcileReport,
} from '@calyx/dataplane';
import {
  ChainText,
  planFamily,
  planIpsets,
  validateTables,
  type Cursors,
  type FamilyPlan,
  type Written,
} from './plan.js';
import { normalizeMember } from './save.js';
import { parseIpsetSave, parseIptablesSave, type FamilyActual, type IpsetActual } from './save.js';
import type { IptablesDesired } from './types.js';

export interface IptablesProgrammerOptions {
  runner: CommandRunner;
  /** Program this network namespace instead of the current one. */
  netns?: string;
  logger?: Logger;
  /** Prefix of every chain and ipset we own; nothing else is ever read as ours or removed. Default `calyx-`. */
  prefix?: string;
  /** IP families to program. Default both. */
  families?: readonly (4 | 6)[];
  /** Which iptables binaries: the distribution's default, or explicitly nft or legacy. */
  backend?: 'default' | 'nft' | 'legacy';
}

interface FamilyState {
  actual: FamilyActual;
  written: Written;
  cursors: Cursors;
}

interface KnownState {
  v4: FamilyState;
  v6: FamilyState;
  ipsets: Map<string, IpsetActual>;
}

/**
 * Programs chains, hooks and ipsets with one `iptables-restore --noflush` per family and
 * apply, rewriting only chains whose content changed. It reads the kernel's state (one
 * `iptables-save` per family and one `ipset save`) only on the first apply and after
 * `invalidate()`; between reads it trusts what it wrote, so an apply costs what changed, not
 * what exists. Our rules carry hash comments, which makes that read cheap to compare, finds
 * drift, and lets a restarted agent adopt what is there without rewriting (or flushing) anything.
 */
export class IptablesProgrammer implements Programmer<IptablesDesired> {
  private readonly runner: CommandRunner;
  private readonly netns: string | undefined;
  private readonly logger: Logger;
  private readonly prefix: string;
  private readonly families: readonly (4 | 6)[];
  private readonly backend: 'default' | 'nft' | 'legacy';
  private readonly tmpSet: string;
  private state: KnownState | undefined;
  private ipsetsWritten = new Map<string, readonly string[]>();

  constructor(opts: IptablesProgrammerOptions) {
    this.runner = opts.runner;
    this.netns = opts.netns;
    this.logger = (opts.logger ?? silentLogger).child({ programmer: 'iptables' });
    this.prefix = opts.prefix ?? 'calyx-';
    this.families = opts.families ?? [4, 6];
    this.backend = opts.backend ?? 'default';
    this.tmpSet = `${this.prefix}tmp`;
    if (!/^[A-Za-z0-9_.-]{1,12}$/.test(this.prefix))
      throw new RangeError('prefix must be 1-12 characters of [A-Za-z0-9_.-]');
  }

  invalidate(): void {
    this.state = undefined;
  }

  private command(family: 4 | 6, tool: 'save' | 'restore'): string {
    const base = family === 4 ? 'iptables' : 'ip6tables';
    return this.backend === 'default' ? `${base}-${tool}` : `${base}-${this.backend}-${tool}`;
  }

  private run(argv: string[], input?: string, okExitCodes?: number[]): Promise<CommandResult> {
    return this.runner.run(argv, {
      ...(this.netns ? { netns: this.netns } : {}),
      ...(input !== undefined ? { input } : {}),
      ...(okExitCodes ? { okExitCodes } : {}),
    });
  }

  /**
   * The first apply (and the one after `invalidate()`). Validates everything; then, at once:
   * reads both families' tables, creates and fills the desired ipsets (`-exist`: idempotent,
   * nothing removed — on a restarted agent it changes nothing), and computes every chain's
   * text. The ipsets are read back only after the fill, alongside the restores that follow, to
   * remove what is stale: no phase waits for a read it does not need.
   */
  private async readAndPrepare(
    desired: IptablesDesired,
    text: ChainText,
  ): Promise<{ state: KnownState; readIpsets: () => Promise<Map<string, IpsetActual>> }> {
    for (const f of this.families) validateTables(f === 4 ? desired.v4 : desired.v6, this.prefix);
    // Validates the sets and gives the lines that create and fill them from nothing.
    const fill = planIpsets(desired.ipsets, new Map(), new Map(), this.prefix, this.tmpSet);
    const save = async (family: 4 | 6): Promise<FamilyState> => {
      const fresh = { written: new Map(), cursors: new Map() };
      if (!this.families.includes(family)) return { actual: new Map(), ...fresh };
      const r = await this.run([this.command(family, 'save')]);
      return { actual: parseIptablesSave(r.stdout, this.prefix), ...fresh };
    };
    // The fill first: the restores wait for it, and each process start costs the event loop.
    const filling = this.ipsetRestore(fill.pre);
    const tables = Promise.all([save(4), save(6)]);
    // Synchronous work while the children run; failures surface once everything settled.
    let prewarmError: unknown;
    try {
      for (const f of this.families) text.prewarm(f === 4 ? desired.v4 : desired.v6);
    } catch (e) {
      prewarmError = e;
    }
    const [t, fr] = await Promise.allSettled([tables, filling]);
    if (prewarmError) throw prewarmError;
    if (t.status === 'rejected') throw t.reason;
    if (fr.status === 'rejected') throw fr.reason;
    const [v4, v6] = t.value;
    // Until the read-back, the sets are known to hold at least what was desired.
    const ipsets = new Map<string, IpsetActual>();
    for (const [name, d] of desired.ipsets)
      ipsets.set(name, {
        type: d.type,
        family: d.family,
        members: new Set(d.members.map(normalizeMember)),
      });
    this.ipsetsWritten = new Map();
    const readIpsets = () =>
      this.run(['ipset', 'save']).then((r) => parseIpsetSave(r.stdout, this.prefix));
    return { state: { v4, v6, ipsets }, readIpsets };
  }

  private async ipsetRestore(lines: string[]): Promise<void> {
    if (lines.length) await this.run(['ipset', '-exist', 'restore'], lines.join('\n') + '\n');
  }

  /** One family's restore; when it fails only because a stale chain is still referenced, again without deleting it. */
  private async restore(family: 4 | 6, plan: FamilyPlan): Promise<void> {
    if (!plan.input) return;
    const argv = [this.command(family, 'restore'), '--noflush'];
    const r = await this.run(argv, plan.input, [0, 1, 2, 4]);
    if (r.exitCode === 0) return plan.commit();
    if (plan.chainsDeleted && plan.inputKeepingStale !== plan.input) {
      const again = await this.run(argv, plan.inputKeepingStale, [0, 1, 2, 4]);
      if (again.exitCode === 0) {
        this.logger.warn(
          { family, stderr: r.stderr.trim().split('\n').slice(-2).join(' | ') },
          'stale chains still referenced by rules that are not ours: flushed, not deleted',
        );
        return plan.commit(true);
      }
    }
    throw new CommandError(argv, r.exitCode, r.stderr, r.stdout);
  }

  async apply(desired: IptablesDesired): Promise<ReconcileReport> {
    const t0 = performance.now();
    const text = new ChainText();
    let readIpsets: (() => Promise<Map<string, IpsetActual>>) | undefined;
    let ensured = 0;
    if (!this.state) {
      try {
        const prepared = await this.readAndPrepare(desired, text);
        this.state = prepared.state;
        readIpsets = prepared.readIpsets;
        ensured = desired.ipsets.size;
      } catch (e) {
        this.invalidate();
        throw e;
      }
    }
    const state = this.state!;
    // Everything is planned (and validated) before anything runs.
    const plans = this.families.map(
      (f) =>
        [
          f,
          planFamily(
            f === 4 ? desired.v4 : desired.v6,
            state[f === 4 ? 'v4' : 'v6'].actual,
            state[f === 4 ? 'v4' : 'v6'].written,
            this.prefix,
            state[f === 4 ? 'v4' : 'v6'].cursors,
            text,
          ),
        ] as const,
    );
    let sets = planIpsets(
      desired.ipsets,
      state.ipsets,
      this.ipsetsWritten,
      this.prefix,
      this.tmpSet,
    );
    for (const c of sets.conflicts) this.logger.error({ ipset: c }, 'ipset conflict: left alone');
    try {
      const tables = () => Promise.all(plans.map(([f, p]) => this.restore(f, p)));
      let ipsetRead: Promise<Map<string, IpsetActual>> | undefined;
      if (readIpsets) {
        // First apply: the sets were filled; read them back while the restores run (their
        // processes are started first, they are what the apply waits for).
        const restoring = tables();
        ipsetRead = readIpsets();
        await Promise.all([restoring, ipsetRead]);
      } else if (sets.preIsUpdateOnly) await Promise.all([this.ipsetRestore(sets.pre), tables()]);
      else {
        await this.ipsetRestore(sets.pre);
        await tables();
      }
      sets.commit();
      if (ipsetRead) {
        // The ipsets as they really are (read after the fill): remove what is stale.
        const read = await ipsetRead;
        sets = planIpsets(desired.ipsets, read, new Map(), this.prefix, this.tmpSet);
        for (const c of sets.conflicts)
          this.logger.error({ ipset: c }, 'ipset conflict: left alone');
        await this.ipsetRestore(sets.pre);
        sets.commit();
        state.ipsets = read;
        this.ipsetsWritten = new Map(
          [...desired.ipsets].filter(([n]) => read.has(n)).map(([n, d]) => [n, d.members]),
        );
      }
      if (sets.post.length) {
        // A stale set still referenced by someone else's rule cannot be destroyed: say so, go on.
        const r = await this.run(
          ['ipset', '-exist', 'restore'],
          sets.post.join('\n') + '\n',
          [0, 1],
        );
        if (r.exitCode !== 0) {
          this.logger.warn({ stderr: r.stderr.trim() }, 'some stale ipsets could not be destroyed');
          this.invalidate();
        }
      }
    } catch (e) {
      // What was applied is unknown: read it again next time.
      this.invalidate();
      throw e;
    }
    const sum = (k: 'chainsWritten' | 'rulesWritten' | 'chainsDeleted' | 'hooksFixed') =>
      plans.reduce((n, [, p]) => n + p[k], 0);
    const details = {
      chainsWritten: sum('chainsWritten'),
      rulesWritten: sum('rulesWritten'),
      chainsDeleted: sum('chainsDeleted'),
      hooksFixed: sum('hooksFixed'),
      ipsetsCreated: sets.created,
      ipsetsSwapped: sets.swapped,
      ipsetMembersAdded: sets.membersAdded,
      ipsetMembersRemoved: sets.membersRemoved,
      ipsetsDestroyed: sets.destroyed,
      // Created or filled where missing on the first apply (idempotent, not counted as changes).
      ipsetsEnsured: ensured,
    };
    const changes =
      details.chainsWritten +
      details.chainsDeleted +
      details.hooksFixed +
      details.ipsetsCreated +
      details.ipsetMembersAdded +
      details.ipsetMembersRemoved +
      details.ipsetsDestroyed;
    if (changes) this.logger.debug(details, 'iptables applied');
    return { changes, durationMs: performance.now() - t0, details };
  }
}

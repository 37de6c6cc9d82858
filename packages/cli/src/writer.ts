import type { Kind, ResourceOf } from '@calyx/model';
import {
  AlreadyExistsError,
  ConflictError,
  MAX_TXN_OPS,
  NotFoundError,
  type ResourceClient,
  type Revision,
} from '@calyx/datastore';
import type { Progress } from './progress.js';

/** One record written by a transaction, with the precondition that makes it safe. */
export type Write =
  | { op: 'create'; kind: Kind; value: ResourceOf<Kind> }
  | { op: 'update'; kind: Kind; value: ResourceOf<Kind>; expectedModRevision: Revision }
  | { op: 'delete'; kind: Kind; key: string; expectedModRevision: Revision };

/**
 * The writes of one document (a resource and what goes with it: an endpoint's location
 * record, its copy under its old host), which always land in the same transaction.
 */
export interface Unit {
  /** `Network n1` */
  label: string;
  writes: Write[];
  /** What happened, for the report: `created`, `configured`, `unchanged`, `deleted`, … */
  outcome: string;
}

/**
 * Datastore operations a write costs in a ResourceTxn: its compare, its put or delete, and the
 * read in the failure branch that names the key whose compare failed.
 */
export const OPS_PER_WRITE = 3;

/** The most writes one transaction may carry (the datastore's MAX_TXN_OPS, etcd's --max-txn-ops). */
export const MAX_WRITES_PER_TXN = Math.floor(MAX_TXN_OPS / OPS_PER_WRITE);

/**
 * Packs units into as few transactions as fit, in order, never splitting a unit. Units
 * without writes go with their neighbours (they cost nothing).
 */
export function chunkUnits<U extends { readonly writes: readonly unknown[] }>(
  units: readonly U[],
  maxWrites = MAX_WRITES_PER_TXN,
): U[][] {
  const chunks: U[][] = [];
  let cur: U[] = [];
  let n = 0;
  for (const u of units) {
    const w = u.writes.length;
    if (w > maxWrites)
      throw new Error(`internal: one document needs ${w} writes, over ${maxWrites}`);
    if (n + w > maxWrites && cur.length) {
      chunks.push(cur);
      cur = [];
      n = 0;
    }
    cur.push(u);
    n += w;
  }
  if (cur.length) chunks.push(cur);
  return chunks;
}

async function commitOnce(client: ResourceClient, units: readonly Unit[]): Promise<void> {
  const txn = client.txn();
  for (const u of units) {
    for (const w of u.writes) {
      if (w.op === 'create') txn.create(w.kind, w.value);
      else if (w.op === 'update')
        txn.update(w.kind, w.value, { expectedModRevision: w.expectedModRevision });
      else txn.delete(w.kind, w.key, { expectedModRevision: w.expectedModRevision });
    }
  }
  if (txn.size) await txn.commit();
}

/** A compare-and-set lost to a concurrent writer (the key changed, appeared or went away). */
export const lostRace = (e: unknown): boolean =>
  e instanceof ConflictError || e instanceof AlreadyExistsError || e instanceof NotFoundError;

export interface CommitReport {
  /** Units written (or found unchanged), in order. */
  done: Unit[];
  transactions: number;
}

/** The chunk of units that failed, and what was written before it. */
export class PartialWriteError extends Error {
  constructor(
    readonly error: unknown,
    readonly done: Unit[],
    readonly notDone: Unit[],
    readonly chunk: number,
    readonly chunks: number,
  ) {
    super(`transaction ${chunk} of ${chunks} failed: ${(error as Error).message}`);
  }
}

/**
 * Commits the units chunk by chunk. A chunk whose compare-and-set lost to a concurrent writer
 * is planned again from fresh reads (`replan`, given and returning the chunk's units in order)
 * and retried, up to `attempts` times.
 */
export async function commitUnits(
  client: ResourceClient,
  units: readonly Unit[],
  replan: (units: Unit[]) => Promise<Unit[]>,
  opts: { progress?: Progress; attempts?: number } = {},
): Promise<CommitReport> {
  const chunks = chunkUnits(units);
  const done: Unit[] = [];
  for (let c = 0; c < chunks.length; c++) {
    let chunk = chunks[c]!;
    for (let attempt = 1; ; attempt++) {
      try {
        await commitOnce(client, chunk);
        break;
      } catch (e) {
        if (lostRace(e) && attempt < (opts.attempts ?? 3)) {
          chunk = await replan(chunk);
          if (chunkUnits(chunk).length === 1) continue;
        }
        throw new PartialWriteError(e, done, chunks.slice(c).flat(), c + 1, chunks.length);
      }
    }
    done.push(...chunk);
    opts.progress?.tick(chunk.length);
  }
  return { done, transactions: chunks.length };
}

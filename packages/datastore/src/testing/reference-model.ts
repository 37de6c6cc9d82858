import type { Compare, KeyValue, TxnOp, TxnOpResult, WatchEvent } from '../types.js';

/**
 * A deliberately naive model of the contract, for property tests: a map, a revision counter
 * and an event log. Outcomes are plain data so they compare with an adapter's results.
 */
export type ModelOp =
  | { op: 'create'; key: string; value: string }
  | { op: 'update'; key: string; value: string; expected?: 'current' | 'stale' }
  | { op: 'put'; key: string; value: string }
  | { op: 'delete'; key: string; expected?: 'current' | 'stale' }
  | { op: 'txn'; compares: Compare[]; success: TxnOp[]; failure: TxnOp[] };

export type ModelOutcome =
  | { ok: true; succeeded?: boolean; results?: TxnOpResult[] }
  | { ok: false; error: 'ALREADY_EXISTS' | 'NOT_FOUND' | 'CONFLICT' };

export class ReferenceModel {
  revision: bigint;
  readonly state = new Map<string, KeyValue>();
  readonly events: WatchEvent[] = [];

  constructor(startRevision = 1n) {
    this.revision = startRevision;
  }

  private write(key: string, value: string): KeyValue {
    const prev = this.state.get(key);
    const kv: KeyValue = {
      key,
      value,
      createRevision: prev ? prev.createRevision : this.revision,
      modRevision: this.revision,
      version: prev ? prev.version + 1n : 1n,
      lease: null,
    };
    this.state.set(key, kv);
    this.events.push({ type: 'put', kv, prev });
    return kv;
  }

  private remove(key: string): KeyValue | undefined {
    const prev = this.state.get(key);
    if (!prev) return undefined;
    this.state.delete(key);
    this.events.push({ type: 'delete', key, revision: this.revision, prev });
    return prev;
  }

  /** The expected modRevision an op would pass: the key's own, or a wrong one. */
  expectedFor(key: string, which: 'current' | 'stale'): bigint {
    const mod = this.state.get(key)?.modRevision ?? 0n;
    return which === 'current' ? mod : mod + 1000n;
  }

  private holds(c: Compare): boolean {
    const kv = this.state.get(c.key);
    if (c.target === 'exists') return (kv !== undefined) === c.value;
    if (c.target === 'value') {
      if (!kv) return false; // etcd: a value compare on a missing key fails
      return c.op === '=' ? kv.value === c.value : kv.value !== c.value;
    }
    const actual = kv ? kv[c.target] : 0n;
    switch (c.op) {
      case '=':
        return actual === c.value;
      case '!=':
        return actual !== c.value;
      case '<':
        return actual < c.value;
      case '>':
        return actual > c.value;
    }
  }

  apply(op: ModelOp): ModelOutcome {
    switch (op.op) {
      case 'create':
        if (this.state.has(op.key)) return { ok: false, error: 'ALREADY_EXISTS' };
        this.revision++;
        this.write(op.key, op.value);
        return { ok: true };
      case 'put':
        this.revision++;
        this.write(op.key, op.value);
        return { ok: true };
      case 'update': {
        const kv = this.state.get(op.key);
        if (!kv) return { ok: false, error: 'NOT_FOUND' };
        if (op.expected === 'stale') return { ok: false, error: 'CONFLICT' };
        this.revision++;
        this.write(op.key, op.value);
        return { ok: true };
      }
      case 'delete': {
        const kv = this.state.get(op.key);
        if (!kv) return { ok: false, error: 'NOT_FOUND' };
        if (op.expected === 'stale') return { ok: false, error: 'CONFLICT' };
        this.revision++;
        this.remove(op.key);
        return { ok: true };
      }
      case 'txn': {
        const succeeded = op.compares.every((c) => this.holds(c));
        const ops = succeeded ? op.success : op.failure;
        const writes = ops.some(
          (o) => o.type === 'put' || (o.type === 'delete' && this.state.has(o.key)),
        );
        if (writes) this.revision++;
        const results: TxnOpResult[] = ops.map((o) => {
          if (o.type === 'get') return { type: 'get', kv: this.state.get(o.key) };
          if (o.type === 'put') return { type: 'put', kv: this.write(o.key, o.value) };
          const prev = this.remove(o.key);
          return { type: 'delete', deleted: prev !== undefined, prev };
        });
        return { ok: true, succeeded, results };
      }
    }
  }

  list(prefix: string): KeyValue[] {
    return [...this.state.values()]
      .filter((kv) => kv.key.startsWith(prefix))
      .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }
}

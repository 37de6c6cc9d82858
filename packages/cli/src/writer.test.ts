import { describe, expect, it } from 'vitest';
import { MAX_TXN_OPS } from '@calyx/datastore';
import { MAX_WRITES_PER_TXN, OPS_PER_WRITE, chunkUnits } from './writer.js';

const unit = (n: number) => ({ writes: new Array<unknown>(n).fill(null) });

describe('chunkUnits', () => {
  it('fits the datastore limit: three operations a write', () => {
    expect(MAX_WRITES_PER_TXN * OPS_PER_WRITE).toBeLessThanOrEqual(MAX_TXN_OPS);
    expect(MAX_WRITES_PER_TXN).toBe(42);
  });

  it('packs units in order into as few transactions as fit, never splitting one', () => {
    const sizes = (chunks: { writes: unknown[] }[][]) =>
      chunks.map((c) => c.map((u) => u.writes.length));
    expect(sizes(chunkUnits([unit(1), unit(2), unit(1)], 3))).toEqual([[1, 2], [1]]);
    expect(sizes(chunkUnits([unit(3), unit(0), unit(3)], 3))).toEqual([[3, 0], [3]]);
    expect(chunkUnits(Array.from({ length: 100 }, () => unit(1)))).toHaveLength(3);
    expect(chunkUnits([])).toEqual([]);
    expect(() => chunkUnits([unit(4)], 3)).toThrow(/needs 4 writes/);
  });
});

import { describe, expect, it } from 'vitest';
import {
  median,
  meetsTarget,
  mergeResults,
  percentile,
  renderMarkdown,
  renderSvg,
  result,
} from './index.js';

const r = result({
  id: 'x.put',
  description: 'puts',
  unit: 'ops/s',
  lowerIsBetter: false,
  value: 50,
  baseline: { name: 'Map', value: 200 },
  target: 0.5,
});

describe('measure', () => {
  it('computes median, percentiles and ratios', () => {
    expect(median([5, 1, 3])).toBe(3);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 99)).toBe(10);
    expect(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 50)).toBe(5);
    expect(r.ratio).toBe(0.25);
    expect(meetsTarget(r)).toBe(false);
    expect(meetsTarget({ ...r, lowerIsBetter: true, target: 1.2 })).toBe(true);
  });
});

describe('report', () => {
  it('draws both bars, the ratio and whether the target was met', () => {
    const svg = renderSvg(r);
    expect(svg).toContain('<svg');
    expect(svg).toContain('Calyx');
    expect(svg).toContain('>Map<');
    expect(svg).toContain('ratio 0.250×');
    expect(svg).toContain('MISSED');
  });

  it('tabulates every result with its baseline', () => {
    const md = renderMarkdown({
      date: 'd',
      machine: { cpu: 'c', cores: 2, memoryGiB: 1, kernel: 'k', node: 'v20', platform: 'linux' },
      results: [r],
    });
    expect(md).toContain(
      '| [x.put](#xput) | 50.00 ops/s | 200 ops/s (Map) | 0.250× | ≥ 0.5× ❌ missed |',
    );
    expect(md).toContain('![x.put](x.put.svg)');
  });

  it('merges a subset run into earlier results', () => {
    const a = { ...r, id: 'a' };
    const b = { ...r, id: 'b', value: 1 };
    expect(mergeResults([a, b], [{ ...b, value: 2 }]).map((x) => [x.id, x.value])).toEqual([
      ['a', 50],
      ['b', 2],
    ]);
  });
});

describe('interleaved measurements', () => {
  it('changes the order of the sides every round: every order once, each followed by its reverse', async () => {
    const { interleavings, interleaved } = await import('./index.js');
    expect(interleavings(['a', 'b'])).toEqual([
      ['a', 'b'],
      ['b', 'a'],
    ]);
    const three = interleavings(['a', 'b', 'c']);
    expect(three).toHaveLength(6);
    expect(new Set(three.map((o) => o.join(''))).size).toBe(6);
    expect(three[1]).toEqual([...three[0]!].reverse());
    const calls: string[] = [];
    const side = (k: string) => async (r: number) => {
      calls.push(`${r}${k}`);
      return r;
    };
    const out = await interleaved(2, { x: side('x'), y: side('y') });
    expect(calls).toEqual(['0x', '0y', '1y', '1x']);
    expect(out).toEqual({ x: [0, 1], y: [0, 1] });
  });
});

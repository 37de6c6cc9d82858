import type { BenchmarkResult } from './types.js';

export function median(xs: number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Nearest-rank percentile (p in 0..100). */
export function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const rank = Math.min(s.length, Math.max(1, Math.ceil((p / 100) * s.length)));
  return s[rank - 1]!;
}

/** Runs `fn` `runs` times (after `warmup` unmeasured runs); returns each run's milliseconds. */
export async function timeRuns(
  fn: () => Promise<unknown> | unknown,
  runs = 5,
  warmup = 1,
): Promise<number[]> {
  for (let i = 0; i < warmup; i++) await fn();
  const out: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await fn();
    out.push(performance.now() - t0);
  }
  return out;
}

/** Builds a result with its ratio. */
export function result(r: Omit<BenchmarkResult, 'ratio'>): BenchmarkResult {
  return { ...r, ratio: r.baseline.value === 0 ? NaN : r.value / r.baseline.value };
}

/** Whether a result meets its target (true when it has none). */
export function meetsTarget(r: BenchmarkResult): boolean {
  const ratioOk =
    r.target === null || (r.lowerIsBetter ? r.ratio <= r.target : r.ratio >= r.target);
  const abs = r.absoluteTarget;
  const absOk = !abs || (abs.op === '<=' ? r.value <= abs.value : r.value >= abs.value);
  return ratioOk && absOk;
}

/** The targets of a result in words: `≤ 1.2× the baseline`, `≤ 1000 ms`. */
export function describeTargets(r: BenchmarkResult): string {
  const parts: string[] = [];
  if (r.target !== null) parts.push(`${r.lowerIsBetter ? '≤' : '≥'} ${r.target}×`);
  if (r.absoluteTarget)
    parts.push(`${r.absoluteTarget.op === '<=' ? '≤' : '≥'} ${r.absoluteTarget.value} ${r.unit}`);
  return parts.join(', ');
}

/** Every order of `keys`, each followed by its reverse (so rounds 0 and 1 are reverses). */
export function interleavings<K>(keys: readonly K[]): K[][] {
  const perms: K[][] = [];
  const permute = (rest: readonly K[], acc: K[]) => {
    if (rest.length === 0) perms.push(acc);
    rest.forEach((k, i) => permute([...rest.slice(0, i), ...rest.slice(i + 1)], [...acc, k]));
  };
  permute(keys, []);
  const out: K[][] = [];
  const seen = new Set<string>();
  for (const p of perms) {
    const id = JSON.stringify(p);
    if (seen.has(id)) continue;
    const rev = [...p].reverse();
    out.push(p);
    seen.add(id);
    if (rev.length > 1) {
      out.push(rev);
      seen.add(JSON.stringify(rev));
    }
  }
  return out;
}

/**
 * Measures every side once per round, in an order that changes every round (every order of
 * the sides in turn), so none profits from another's warm-up or suffers from its garbage.
 */
export async function interleaved<K extends string>(
  rounds: number,
  sides: Record<K, (round: number) => Promise<number>>,
): Promise<Record<K, number[]>> {
  const keys = Object.keys(sides) as K[];
  const orders = interleavings(keys);
  const out = Object.fromEntries(keys.map((k) => [k, [] as number[]])) as Record<K, number[]>;
  for (let r = 0; r < rounds; r++)
    for (const k of orders[r % orders.length]!) out[k].push(await sides[k](r));
  return out;
}

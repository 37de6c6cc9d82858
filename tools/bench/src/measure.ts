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

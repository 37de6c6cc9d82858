/** One line of docs/benchmarks/results.json. */
export interface BenchmarkResult {
  id: string;
  description: string;
  unit: string;
  lowerIsBetter: boolean;
  value: number;
  /** The same final state reached by the raw tool or a peer, measured in the same run. */
  baseline: { name: string; value: number };
  /** value / baseline.value */
  ratio: number;
  /** The bound on the ratio (≤ when lowerIsBetter, ≥ otherwise), or null. */
  target: number | null;
  /** A bound on the value itself, when the issue sets one (e.g. p99 ≤ 1000 ms). */
  absoluteTarget?: { op: '<=' | '>='; value: number };
  /** Free-form facts about the run (sizes, sample counts, percentiles). */
  details?: Record<string, unknown>;
}

export interface BenchContext {
  /** Scale factor from --quick (smaller sizes for a smoke run). */
  quick: boolean;
  log(msg: string): void;
  signal: AbortSignal;
}

/** A file `*.bench.ts` exports `suite: BenchmarkSuite`. */
export interface BenchmarkSuite {
  id: string;
  title: string;
  /** Needs root (network namespaces). */
  needsRoot?: boolean;
  run(ctx: BenchContext): Promise<BenchmarkResult[]>;
}

export interface BenchReport {
  date: string;
  machine: {
    cpu: string;
    cores: number;
    memoryGiB: number;
    kernel: string;
    node: string;
    platform: string;
  };
  results: BenchmarkResult[];
}

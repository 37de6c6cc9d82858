import {
  Counter,
  Gauge,
  Histogram,
  Registry,
  collectDefaultMetrics,
  type LabelValues,
} from 'prom-client';

export interface ProgramMetricsOptions {
  /** Labels on every series, e.g. `{ host: 'compute-1' }`. */
  labels?: Record<string, string>;
  /** Also export the Node process metrics (CPU, memory, event loop lag). Off in tests. */
  processMetrics?: boolean;
}

/** A gauge read at scrape time: one value, or values per label set. */
export type GaugeReading =
  number | ReadonlyArray<{ labels: Record<string, string>; value: number }>;

/**
 * The metric families every Calyx program shares, on a registry of its own (never prom-client's
 * global one, so two agents in one process do not mix). Programs add gauges that are read at
 * scrape time, so counting chains or routes costs nothing between scrapes.
 */
export class ProgramMetrics {
  readonly registry = new Registry();
  /** How long one apply of a programmer took. */
  readonly applySeconds: Histogram<'programmer'>;
  /** Applies per programmer and outcome (`ok`, `error`). */
  readonly applies: Counter<'programmer' | 'result'>;
  /** Datastore operations that failed, per operation. */
  readonly datastoreErrors: Counter<'operation'>;

  constructor(opts: ProgramMetricsOptions = {}) {
    if (opts.labels) this.registry.setDefaultLabels(opts.labels);
    this.applySeconds = new Histogram({
      name: 'calyx_programming_duration_seconds',
      help: 'Time one apply of a dataplane programmer took.',
      labelNames: ['programmer'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [this.registry],
    });
    this.applies = new Counter({
      name: 'calyx_reconciles_total',
      help: 'Applies of a dataplane programmer, by outcome.',
      labelNames: ['programmer', 'result'],
      registers: [this.registry],
    });
    this.datastoreErrors = new Counter({
      name: 'calyx_datastore_errors_total',
      help: 'Datastore operations that failed.',
      labelNames: ['operation'],
      registers: [this.registry],
    });
    if (opts.processMetrics) collectDefaultMetrics({ register: this.registry });
  }

  /** Times `fn` as one apply of `programmer`, counting it as ok or error. */
  async observe<T>(programmer: string, fn: () => Promise<T>): Promise<T> {
    const end = this.applySeconds.startTimer({ programmer });
    try {
      const r = await fn();
      this.applies.inc({ programmer, result: 'ok' });
      return r;
    } catch (e) {
      this.applies.inc({ programmer, result: 'error' });
      throw e;
    } finally {
      end();
    }
  }

  /** A gauge whose value is read when scraped. `read` may be async (e.g. asks BIRD). */
  gauge(
    name: string,
    help: string,
    read: () => GaugeReading | Promise<GaugeReading>,
    labelNames: readonly string[] = [],
  ): Gauge {
    return new Gauge({
      name,
      help,
      labelNames: [...labelNames],
      registers: [this.registry],
      async collect() {
        const v = await read();
        this.reset();
        if (typeof v === 'number') this.set(v);
        else for (const { labels, value } of v) this.set(labels as LabelValues<string>, value);
      },
    });
  }
}

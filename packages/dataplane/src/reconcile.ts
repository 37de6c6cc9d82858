/** What one reconcile pass did. */
export interface ReconcileReport {
  /** Individual changes applied (routes added, rules rewritten, …). */
  changes: number;
  durationMs: number;
  /** Programmer-specific counts. */
  details?: Record<string, number>;
}

/**
 * The level-triggered contract every dataplane programmer follows: given the desired state,
 * read what is there (or trust what it last wrote, between full resyncs), apply only the
 * difference, and report it. Applying the same desired state twice changes nothing.
 */
export interface Programmer<Desired> {
  apply(desired: Desired, opts?: { signal?: AbortSignal }): Promise<ReconcileReport>;
  /** Forget cached knowledge of the actual state: the next apply re-reads it (repairs drift). */
  invalidate(): void;
}

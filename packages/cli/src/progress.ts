/** Where output goes: a process stream, or anything with `write` (tests). */
export interface OutputStream {
  write(chunk: string): unknown;
  /** Progress bars are drawn only on a terminal. */
  isTTY?: boolean;
  columns?: number;
}

/** The text of one frame of a progress bar (pure). */
export function progressLine(label: string, done: number, total: number, width = 80): string {
  const count = `${done}/${total}`;
  const barWidth = Math.max(10, Math.min(40, width - label.length - count.length - 6));
  const filled = total > 0 ? Math.min(barWidth, Math.floor((done / total) * barWidth)) : barWidth;
  return `${label} [${'#'.repeat(filled)}${'-'.repeat(barWidth - filled)}] ${count}`;
}

/**
 * A one-line progress bar redrawn in place on stderr, at most every `intervalMs`. It draws
 * nothing unless the stream is a terminal, so pipes and logs stay clean; `done()` erases it.
 */
export class Progress {
  private count = 0;
  private lastDraw = -Infinity;
  private drawn = false;
  readonly enabled: boolean;

  constructor(
    private readonly stream: OutputStream,
    private label: string,
    private total: number,
    private readonly opts: { intervalMs?: number; now?: () => number } = {},
  ) {
    this.enabled = stream.isTTY === true;
  }

  get value(): number {
    return this.count;
  }

  tick(n = 1): void {
    this.count += n;
    this.draw(false);
  }

  /** Changes the label (and total) for the next phase of the work. */
  phase(label: string, total = this.total): void {
    this.label = label;
    this.total = total;
    this.draw(true);
  }

  private draw(force: boolean): void {
    if (!this.enabled) return;
    const now = (this.opts.now ?? Date.now)();
    if (!force && this.count < this.total && now - this.lastDraw < (this.opts.intervalMs ?? 100))
      return;
    this.lastDraw = now;
    this.drawn = true;
    this.stream.write(
      `\r\x1b[K${progressLine(this.label, this.count, this.total, this.stream.columns ?? 80)}`,
    );
  }

  /** Erases the bar (when one was drawn). */
  done(): void {
    if (this.drawn) this.stream.write('\r\x1b[K');
    this.drawn = false;
  }
}

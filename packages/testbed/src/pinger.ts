import type { CommandRunner, RunningCommand } from '@calyx/dataplane';

export interface PingStats {
  /** Highest icmp_seq sent so far. */
  sent: number;
  received: number;
  /** Sequence numbers sent and never answered (excluding the last `inFlight`). */
  lost: number[];
  /** Longest run of consecutive lost replies, in ms (runs × interval). */
  longestOutageMs: number;
  /** Milliseconds from start until the first reply, or undefined. */
  firstReplyMs: number | undefined;
}

/**
 * Continuous `ping` from inside a namespace (root allows intervals below 200 ms). Reads its
 * output line by line; `stop()` ends it and returns the statistics.
 */
export class Pinger {
  private readonly child: RunningCommand;
  private readonly replies = new Set<number>();
  private maxSeq = 0;
  private firstReplyAt: number | undefined;
  private readonly started = performance.now();
  private readonly reading: Promise<void>;
  private waiters: { n: number; resolve: () => void; reject: (e: Error) => void }[] = [];
  /** Why ping is no longer running (it exits at once when it has no route to the target). */
  private ended: Error | undefined;

  constructor(
    runner: CommandRunner,
    netns: string,
    readonly target: string,
    readonly intervalMs = 10,
  ) {
    const family = target.includes(':') ? '-6' : '-4';
    this.child = runner.spawn(
      ['ping', family, '-n', '-O', '-W', '1', '-i', String(intervalMs / 1000), target],
      { netns },
    );
    this.reading = this.read();
  }

  private async read(): Promise<void> {
    for await (const line of this.child.lines) {
      const reply = /icmp_seq=(\d+) ttl=/.exec(line);
      const noAnswer = /no answer yet for icmp_seq=(\d+)/.exec(line);
      if (reply) {
        const seq = Number(reply[1]);
        this.replies.add(seq);
        this.maxSeq = Math.max(this.maxSeq, seq);
        this.firstReplyAt ??= performance.now();
        this.waiters = this.waiters.filter((w) => {
          if (this.replies.size >= w.n) w.resolve();
          return this.replies.size < w.n;
        });
      } else if (noAnswer) {
        this.maxSeq = Math.max(this.maxSeq, Number(noAnswer[1]));
      }
    }
    const exit = await this.child.exited;
    this.ended = new Error(
      `ping ${this.target} ended (exit ${exit.exitCode ?? exit.signal})${exit.stderr.trim() ? `: ${exit.stderr.trim()}` : ''}`,
    );
    for (const w of this.waiters) w.reject(this.ended);
    this.waiters = [];
  }

  /** performance.now() of the first reply, if any. */
  get firstReplyTime(): number | undefined {
    return this.firstReplyAt;
  }

  /** Resolves once `n` replies have arrived in total; rejects if ping exits before. */
  waitForReplies(n = 1): Promise<void> {
    if (this.replies.size >= n) return Promise.resolve();
    if (this.ended) return Promise.reject(this.ended);
    return new Promise((resolve, reject) => this.waiters.push({ n, resolve, reject }));
  }

  stats(inFlight = 5): PingStats {
    const lost: number[] = [];
    const last = this.maxSeq - inFlight;
    let longest = 0;
    let run = 0;
    for (let s = 1; s <= last; s++) {
      if (this.replies.has(s)) {
        run = 0;
      } else {
        lost.push(s);
        run++;
        longest = Math.max(longest, run);
      }
    }
    return {
      sent: this.maxSeq,
      received: this.replies.size,
      lost,
      longestOutageMs: longest * this.intervalMs,
      firstReplyMs: this.firstReplyAt === undefined ? undefined : this.firstReplyAt - this.started,
    };
  }

  async stop(): Promise<PingStats> {
    // SIGINT makes ping print its summary and exit cleanly.
    this.child.kill('SIGINT');
    await this.child.exited;
    await this.reading;
    return this.stats();
  }
}

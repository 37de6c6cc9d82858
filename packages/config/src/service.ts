import { silentLogger, type Logger } from '@calyx/core';

/** What a long-running program is to `runService`. */
export interface Service {
  /** Resolves once the service runs (e.g. in sync and programmed); rejects if it cannot start. */
  start(): Promise<void>;
  /** Stops it; also called after a failed or interrupted start, so it must tolerate both. */
  stop(): Promise<void>;
}

/** Where stop signals come from: `process` in a program, an EventEmitter in tests. */
export interface SignalSource {
  once(signal: NodeJS.Signals, listener: () => void): unknown;
  removeListener(signal: NodeJS.Signals, listener: () => void): unknown;
}

export interface RunServiceOptions {
  logger?: Logger;
  /** Default `process`. */
  signals?: SignalSource;
  /** Default SIGINT and SIGTERM. */
  stopOn?: readonly NodeJS.Signals[];
}

/** Exit codes of `runService`: 0 stopped by a signal, 1 could not start or stop cleanly. */
export const SERVICE_EXIT = { stopped: 0, failed: 1 } as const;

/**
 * Runs a service until a stop signal and returns the exit code for the program to exit with
 * (a library never exits the process itself). A signal during start stops it cleanly (exit 0,
 * what a service manager stopping a slow start expects); a start that fails is logged, the
 * service is stopped, and the code is 1.
 */
export async function runService(service: Service, opts: RunServiceOptions = {}): Promise<number> {
  const logger = opts.logger ?? silentLogger;
  const signals = opts.signals ?? process;
  const stopOn = opts.stopOn ?? ['SIGINT', 'SIGTERM'];
  let received: ((signal: NodeJS.Signals) => void) | undefined;
  const stopRequested = new Promise<NodeJS.Signals>((resolve) => (received = resolve));
  const listeners = stopOn.map((signal) => {
    const listener = () => received?.(signal);
    signals.once(signal, listener);
    return [signal, listener] as const;
  });
  const stop = async (): Promise<boolean> => {
    try {
      await service.stop();
      return true;
    } catch (e) {
      logger.error({ err: (e as Error).message }, 'stopping failed');
      return false;
    }
  };
  try {
    const started = service.start().then(
      () => ({ ok: true as const }),
      (error: unknown) => ({ ok: false as const, error }),
    );
    const first = await Promise.race([started, stopRequested.then((signal) => ({ signal }))]);
    if ('signal' in first) {
      logger.info({ signal: first.signal }, 'stopping before start completed');
      // A failed stop may not have interrupted start(): do not wait for it then.
      if (!(await stop())) return SERVICE_EXIT.failed;
      await started; // settles once stop() has interrupted it
      return SERVICE_EXIT.stopped;
    }
    if (!first.ok) {
      logger.error(
        { err: (first.error as Error)?.message ?? String(first.error) },
        'could not start',
      );
      await stop();
      return SERVICE_EXIT.failed;
    }
    logger.info('started');
    const signal = await stopRequested;
    logger.info({ signal }, 'stopping');
    return (await stop()) ? SERVICE_EXIT.stopped : SERVICE_EXIT.failed;
  } finally {
    for (const [signal, listener] of listeners) signals.removeListener(signal, listener);
  }
}

export { type Clock, type TimerHandle, systemClock, ManualClock } from './clock.js';
export { CalyxError, AbortedError, throwIfAborted, isCalyxError } from './errors.js';
export { type Logger, type LogRecord, silentLogger, MemoryLogger } from './logger.js';
export { sleep, backoffDelay, deferred, type Deferred, AsyncQueue, SerialTask } from './async.js';
export { CLOCK, LOGGER } from './tokens.js';

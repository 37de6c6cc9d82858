import { CalyxError } from '@calyx/core';

/** The model cannot be rendered, or BIRD rejected the rendered config (`bird -p`). */
export class BirdConfigError extends CalyxError {
  constructor(
    message: string,
    readonly birdOutput?: string,
  ) {
    super('BIRD_CONFIG', message);
  }
}

/** BIRD did not start, or `birdc` could not talk to it. */
export class BirdControlError extends CalyxError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('BIRD_CONTROL', message, options);
  }
}

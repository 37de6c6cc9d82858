export type { BirdConfig, BirdPeer, BirdTimers, ExportPolicy } from './model.js';
export { renderBirdConfig, birdProtocolNameOf, protocolName } from './render.js';
export { parseShowProtocols, parseRouteCount, type BirdProtocolStatus } from './status.js';
export { BirdController, type BirdControllerOptions } from './controller.js';
export { BirdConfigError, BirdControlError } from './errors.js';

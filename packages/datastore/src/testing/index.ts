export { runConformanceSuite, type ConformanceTarget } from './conformance.js';
export { ReferenceModel, type ModelOp, type ModelOutcome } from './reference-model.js';
export { GapInjectingDatastore } from './faulty-watch-store.js';
export { WatchReader, describeMessage, within } from './helpers.js';
export { interceptDatastore } from './intercept.js';

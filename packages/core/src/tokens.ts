/** inversify service identifiers for the primitives every module may ask for. */
export const CLOCK = Symbol.for('calyx.Clock');
export const LOGGER = Symbol.for('calyx.Logger');

import { ContainerModule } from 'inversify';
import { LOGGER, type Logger } from '@calyx/core';
import { DATASTORE, type Datastore } from '@calyx/datastore';
import { CalyxDriver, type DriverOptions } from './driver.js';

export const DRIVER = Symbol.for('calyx.Driver');

/** Binds a CalyxDriver over the container's DATASTORE (and LOGGER, when bound). */
export function driverModule(opts: Omit<DriverOptions, 'logger'> = {}): ContainerModule {
  return new ContainerModule(({ bind }) => {
    bind<CalyxDriver>(DRIVER)
      .toDynamicValue((ctx) => {
        const logger = ctx.get<Logger>(LOGGER, { optional: true });
        return new CalyxDriver(ctx.get<Datastore>(DATASTORE), {
          ...opts,
          ...(logger ? { logger } : {}),
        });
      })
      .inSingletonScope();
  });
}

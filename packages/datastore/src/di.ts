import { ContainerModule } from 'inversify';
import { ResourceClient } from './resource-client.js';
import type { Datastore } from './types.js';

/** inversify service identifiers. */
export const DATASTORE = Symbol.for('calyx.Datastore');
export const RESOURCE_CLIENT = Symbol.for('calyx.ResourceClient');

/** Binds a ready datastore and a resource client over it. */
export function datastoreModule(store: Datastore): ContainerModule {
  return new ContainerModule(({ bind }) => {
    bind<Datastore>(DATASTORE).toConstantValue(store);
    bind<ResourceClient>(RESOURCE_CLIENT).toConstantValue(new ResourceClient(store));
  });
}

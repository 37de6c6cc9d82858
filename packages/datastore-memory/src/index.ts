export {
  MemoryDatastore,
  MemoryBackend,
  createMemoryDatastore,
  type MemoryDatastoreOptions,
} from './memory-datastore.js';
export { MemoryEngine, type MemoryEngineOptions } from './engine.js';

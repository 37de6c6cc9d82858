export {
  loadConfig,
  envKeyToPath,
  ConfigError,
  type ConfigIssue,
  type LoadConfigOptions,
} from './load.js';
export {
  healthSettingsSchema,
  logLevelSchema,
  hostNameSettingSchema,
  datastoreUrlSchema,
  healthFromFlags,
} from './common.js';
export {
  runService,
  SERVICE_EXIT,
  type Service,
  type SignalSource,
  type RunServiceOptions,
} from './service.js';
export {
  runProgram,
  serviceOf,
  flagString,
  flagNumber,
  type FlagValues,
  type ProgramSpec,
  type ProgramIo,
} from './program.js';

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

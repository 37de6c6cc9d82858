export {
  CalyxDriver,
  type DriverOptions,
  type PortInput,
  type FixedIpRequest,
  type PortStatus,
  type PortStatusEvent,
} from './driver.js';
export {
  ResourceNotFoundError,
  ResourceExistsError,
  ResourceInUseError,
  AddressInUseError,
  HostUnavailableError,
  ImmutableFieldError,
  TooManyConflictsError,
  PortStatusTimeoutError,
} from './errors.js';
export { DRIVER, driverModule } from './di.js';
export { HaDriver, type HaDriverOptions } from './ha.js';
export {
  resyncDatastore,
  SnapshotInvalidError,
  type OrchestratorSnapshot,
  type ResyncTarget,
  type ResyncOptions,
  type ResyncReport,
  type ResyncChanges,
  type ResyncSkip,
  type ResyncKind,
  type ResyncIpamReport,
  type SnapshotIssue,
} from './resync.js';

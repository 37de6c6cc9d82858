export { CalyxDriver, type DriverOptions, type PortInput, type FixedIpRequest } from './driver.js';
export {
  ResourceNotFoundError,
  ResourceExistsError,
  ResourceInUseError,
  AddressInUseError,
  HostUnavailableError,
  ImmutableFieldError,
  TooManyConflictsError,
} from './errors.js';
export { DRIVER, driverModule } from './di.js';
export { HaDriver, type HaDriverOptions } from './ha.js';

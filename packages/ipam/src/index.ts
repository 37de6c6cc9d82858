export {
  Ipam,
  IpamExhaustedError,
  AddressAllocatedError,
  AddressNotAssignableError,
  IpamContentionError,
  subnetPool,
  subnetPoolName,
  type Allocation,
  type IpamOptions,
} from './ipam.js';
export {
  checkIpam,
  repairIpam,
  portHandle,
  endpointOfHandle,
  type IpamCheckReport,
  type IpamRepairResult,
} from './check.js';
export {
  blockPrefixFor,
  reservedAddresses,
  autoAssignable,
  heldAddresses,
  type HeldAddress,
} from './block.js';
export { allocateConcurrently, releaseConcurrently } from './load.js';

export { ValidationError, KeyLayoutError, formatIssue, type ValidationIssue } from './errors.js';
export {
  ID_PATTERN,
  HOST_PATTERN,
  INTERFACE_NAME_PATTERN,
  idSchema,
  hostNameSchema,
  interfaceNameSchema,
  isValidInterfaceName,
  tapNameFor,
  dhcpInterfaceNameFor,
} from './names.js';
export { PROTOCOL_NUMBERS, PORT_PROTOCOLS, protocolName, protocolNumber } from './protocols.js';
export { ipSchema, cidrSchema, prefixSchema, macSchema, asNumberSchema } from './fields.js';
export {
  networkSchema,
  subnetSchema,
  defaultAllocationPools,
  inAllocationPools,
  allocationPoolSize,
  type Network,
  type NetworkInput,
  type Subnet,
  type SubnetInput,
  type AllocationPool,
  type HostRoute,
} from './network.js';
export {
  endpointSchema,
  endpointLocationSchema,
  type Endpoint,
  type EndpointInput,
  type EndpointLocation,
  type FixedIp,
  type AllowedAddressPair,
} from './endpoint.js';
export {
  securityGroupSchema,
  securityGroupRuleSchema,
  type SecurityGroup,
  type SecurityGroupInput,
  type SecurityGroupRule,
  type SecurityGroupRuleInput,
} from './security-group.js';
export {
  hostSchema,
  bgpConfigurationSchema,
  bgpPeerSchema,
  ipPoolSchema,
  type Host,
  type HostInput,
  type BgpConfiguration,
  type BgpConfigurationInput,
  type BgpPeer,
  type BgpPeerInput,
  type IpPool,
  type IpPoolInput,
} from './bgp.js';
export {
  ipamBlockSchema,
  ipamHandleSchema,
  blockAffinitySchema,
  HANDLE_PATTERN,
  type IpamBlock,
  type IpamHandle,
  type BlockAffinity,
} from './ipam.js';
export {
  endpointStatusSchema,
  hostStatusSchema,
  type EndpointStatus,
  type EndpointStatusInput,
  type HostStatus,
  type HostStatusInput,
} from './status.js';
export {
  ROOT,
  keys,
  prefixes,
  parseKey,
  cidrToKeySegment,
  keySegmentToCidr,
  type ParsedKey,
} from './keys.js';
export {
  KINDS,
  KIND_NAMES,
  isKind,
  parseResource,
  safeParseResource,
  keyOf,
  toValidationIssues,
  type Kind,
  type ResourceOf,
  type InputOf,
  type ParseResult,
} from './kinds.js';
export {
  subnetOverlapIssues,
  assertNoSubnetOverlap,
  endpointAddressIssues,
  assertEndpointAddresses,
  securityGroupReferenceIssues,
} from './deployment.js';

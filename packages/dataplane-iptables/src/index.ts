export { IptablesProgrammer, type IptablesProgrammerOptions } from './iptables-programmer.js';
export type {
  IptablesDesired,
  FamilyTables,
  TableSpec,
  TableName,
  ChainRules,
  IpsetSpec,
  IpsetType,
  ChangeTrackingChains,
} from './types.js';
export { assertChainName, assertIpsetName } from './names.js';
export { ruleHashes, hookHash, withHash, hashOf } from './hash.js';
export { parseIptablesSave, parseIpsetSave, type FamilyActual, type TableActual } from './save.js';
export { planFamily, planIpsets, type Cursors, type Written } from './plan.js';

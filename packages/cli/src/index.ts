export { runCalyxctl, buildProgram, VERSION } from './run.js';
export { CliContext, type CalyxctlIo, type GlobalOptions } from './context.js';
export { EXIT, exitCodeOf, UsageError, ResourceMissingError, type ExitCode } from './exit-codes.js';
export {
  configSchema,
  parseConfig,
  loadConfig,
  chooseDatastore,
  type CalyxctlConfig,
  type DatastoreChoice,
} from './config.js';
export {
  readDocuments,
  validateDocuments,
  toDocument,
  renderDocuments,
  renderValue,
  describeProblem,
  type SourceDocument,
  type ResourceDocument,
  type DocumentProblem,
} from './documents.js';
export { resolveKind, findById, DERIVED_KINDS, NOT_IN_ALL } from './kinds.js';
export { renderTable, renderFields, cellText, type Cell } from './format/table.js';
export { COLUMNS, tableOf } from './format/columns.js';
export {
  renderResources,
  OUTPUT_FORMATS,
  type OutputFormat,
  type KindGroup,
} from './format/output.js';
export {
  summarizeIpam,
  blockUsage,
  addressHolder,
  renderIpamSummary,
  renderIpamCheck,
  renderIpamRepair,
  renderAddressHolder,
  type IpamSummary,
  type PoolUsage,
  type BlockUsage,
  type AddressHolder,
} from './format/ipam.js';
export {
  buildNodeStatus,
  renderNodeStatus,
  renderNodeList,
  type NodeStatus,
  type NodeStatusInput,
  type AgentState,
  type EndpointState,
  type BgpSession,
  type BgpState,
} from './node-status.js';
export {
  explainEndpoint,
  type EndpointExplanation,
  type ExplainedChain,
  type ExplainedIpset,
  type ExplainedPeer,
  type ExplainOptions,
} from './explain.js';
export { renderExplanation } from './format/explain.js';
export { Progress, progressLine, type OutputStream } from './progress.js';
export {
  chunkUnits,
  commitUnits,
  PartialWriteError,
  MAX_WRITES_PER_TXN,
  OPS_PER_WRITE,
  type Unit,
  type Write,
} from './writer.js';
export { listKind, readView, type InvalidRecord } from './read.js';

export {
  CommandError,
  CommandNotFoundError,
  CommandTimeoutError,
  InvalidNameError,
} from './errors.js';
export {
  assertInterfaceName,
  assertNetnsName,
  assertFileName,
  assertAbsolutePath,
  assertArgv,
} from './names.js';
export {
  ExecCommandRunner,
  inNetns,
  type CommandRunner,
  type CommandResult,
  type RunOptions,
  type SpawnOptions,
  type RunningCommand,
  type ExecCommandRunnerOptions,
} from './runner.js';
export { RecordingRunner, type RecordedCall } from './recording-runner.js';
export type { Programmer, ReconcileReport } from './reconcile.js';
export { COMMAND_RUNNER, commandRunnerModule } from './tokens.js';
export { writeFileAtomic, writeFileAtomicSync } from './files.js';

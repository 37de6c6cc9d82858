import { ContainerModule } from 'inversify';
import { ExecCommandRunner, type CommandRunner } from './runner.js';

export const COMMAND_RUNNER = Symbol.for('calyx.CommandRunner');

/** Binds a CommandRunner: the real one by default, or the one given (a RecordingRunner in tests). */
export function commandRunnerModule(
  runner: CommandRunner = new ExecCommandRunner(),
): ContainerModule {
  return new ContainerModule(({ bind }) => {
    bind<CommandRunner>(COMMAND_RUNNER).toConstantValue(runner);
  });
}

import { Container, ContainerModule } from 'inversify';
import { CLOCK, LOGGER, silentLogger, systemClock, type Clock, type Logger } from '@calyx/core';
import { datastoreModule, type Datastore } from '@calyx/datastore';
import { COMMAND_RUNNER, ExecCommandRunner, type CommandRunner } from '@calyx/dataplane';
import { BirdController } from '@calyx/dataplane-bird';
import { RoutesProgrammer } from '@calyx/dataplane-routes';
import { IptablesProgrammer } from '@calyx/dataplane-iptables';
import { Agent } from './agent.js';
import {
  AGENT_CONFIG,
  BIRD_CONTROLLER,
  IPTABLES_PROGRAMMER,
  ROUTES_PROGRAMMER,
  type AgentConfig,
} from './config.js';

/** The agent and its programmers, built from the container's runner, logger and config. */
export function agentModule(config: AgentConfig): ContainerModule {
  return new ContainerModule(({ bind }) => {
    bind<AgentConfig>(AGENT_CONFIG).toConstantValue(config);
    bind<RoutesProgrammer>(ROUTES_PROGRAMMER)
      .toDynamicValue(
        (ctx) =>
          new RoutesProgrammer({
            runner: ctx.get<CommandRunner>(COMMAND_RUNNER),
            logger: ctx.get<Logger>(LOGGER),
            routeProtocol: config.routeProtocol,
            ...(config.netns ? { netns: config.netns } : {}),
          }),
      )
      .inSingletonScope();
    bind<IptablesProgrammer>(IPTABLES_PROGRAMMER)
      .toDynamicValue(
        (ctx) =>
          new IptablesProgrammer({
            runner: ctx.get<CommandRunner>(COMMAND_RUNNER),
            logger: ctx.get<Logger>(LOGGER),
            backend: config.iptablesBackend,
            ...(config.netns ? { netns: config.netns } : {}),
          }),
      )
      .inSingletonScope();
    bind<BirdController>(BIRD_CONTROLLER)
      .toDynamicValue(
        (ctx) =>
          new BirdController({
            runner: ctx.get<CommandRunner>(COMMAND_RUNNER),
            logger: ctx.get<Logger>(LOGGER),
            stateDir: config.stateDir,
            ...(config.netns ? { netns: config.netns } : {}),
          }),
      )
      .inSingletonScope();
    bind(Agent).toSelf().inSingletonScope();
  });
}

/** Clock, logger and command runner: real ones unless given. */
export function runtimeModule(
  opts: { logger?: Logger; clock?: Clock; runner?: CommandRunner } = {},
): ContainerModule {
  return new ContainerModule(({ bind }) => {
    bind<Logger>(LOGGER).toConstantValue(opts.logger ?? silentLogger);
    bind<Clock>(CLOCK).toConstantValue(opts.clock ?? systemClock);
    bind<CommandRunner>(COMMAND_RUNNER).toConstantValue(
      opts.runner ?? new ExecCommandRunner({ ...(opts.logger ? { logger: opts.logger } : {}) }),
    );
  });
}

/** Composes an agent over a datastore: what the bin does, and what an embedding process does. */
export function createAgent(
  store: Datastore,
  config: AgentConfig,
  runtime: { logger?: Logger; clock?: Clock; runner?: CommandRunner } = {},
): Agent {
  const c = new Container();
  c.load(runtimeModule(runtime), datastoreModule(store), agentModule(config));
  return c.get(Agent);
}

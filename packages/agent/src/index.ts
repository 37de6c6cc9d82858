export { Agent, viewOf, type AgentStats } from './agent.js';
export {
  AGENT_CONFIG,
  ROUTES_PROGRAMMER,
  BIRD_CONTROLLER,
  IPTABLES_PROGRAMMER,
  agentConfig,
  agentConfigFromSettings,
  agentSettingsSchema,
  type AgentConfig,
  type AgentSettings,
  type HostServiceConfig,
} from './config.js';
export { agentModule, runtimeModule, createAgent } from './modules.js';

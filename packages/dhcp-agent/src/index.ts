export {
  DhcpAgent,
  DHCP_AGENT_CONFIG,
  DNSMASQ_PROGRAMMER,
  dhcpAgentConfig,
  dhcpAgentModule,
  createDhcpAgent,
  dhcpAgentSettingsSchema,
  dhcpAgentConfigFromSettings,
  type DhcpAgentConfig,
  type DhcpAgentSettings,
} from './dhcp-agent.js';

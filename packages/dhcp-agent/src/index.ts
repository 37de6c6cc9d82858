export {
  DhcpAgent,
  DHCP_AGENT_CONFIG,
  DNSMASQ_PROGRAMMER,
  dhcpAgentConfig,
  dhcpAgentModule,
  createDhcpAgent,
  type DhcpAgentConfig,
} from './dhcp-agent.js';

export { DnsmasqProgrammer, type DnsmasqProgrammerOptions } from './programmer.js';
export {
  renderCommandLine,
  renderHostFiles,
  renderOpts,
  peerInterfaceName,
  validateInstance,
  type DnsmasqInstance,
  type DnsmasqSubnet,
  type DnsmasqHost,
  type DnsmasqPaths,
  type RenderOptions,
  type HostFiles,
} from './render.js';

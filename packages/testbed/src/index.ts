export {
  Testbed,
  sweepStaleNamespaces,
  stopPids,
  type TestHost,
  type TestVm,
  type TestbedOptions,
  type VmAddressV4,
  type VmAddressV6,
} from './testbed.js';
export { Pinger, type PingStats } from './pinger.js';
export { freePort, freePorts } from './ports.js';
export { newRunId, creatorPid } from './names.js';
export {
  startEtcd,
  makeTestPki,
  type TestPki,
  EtcdCluster,
  startRedis,
  type StartedService,
  type StartedEtcd,
  type StartedRedis,
  type EtcdOptions,
} from './services.js';
export { DhcpClients, KeptLease, parseLeaseLine, type DhcpLease } from './dhcp-client.js';
export { DnsProbe } from './dns-probe.js';
export { TrafficProbe, type ConnectResult } from './traffic-probe.js';
export { TcpProxy } from './tcp-proxy.js';
export {
  startRedisSentinel,
  redisCommand,
  RespError,
  type RespReply,
  type RedisSentinelOptions,
  type StartedRedisSentinel,
  type RedisNode,
  type RedisEndpoint,
} from './redis-sentinel.js';

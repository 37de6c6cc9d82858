#!/usr/bin/env node
// The per-host agent as a program: `calyx-agent --hostname compute-1 --datastore etcd://10.0.0.5:2379`.
import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { createDatastore } from '@calyx/datastore';
import { MemoryBackend } from '@calyx/datastore-memory';
import { EtcdBackend } from '@calyx/datastore-etcd';
import { agentConfig, createAgent } from '../index.js';

const { values } = parseArgs({
  options: {
    hostname: { type: 'string', default: hostname() },
    datastore: { type: 'string' },
    netns: { type: 'string' },
    'state-dir': { type: 'string', default: '/var/lib/calyx/agent' },
    'route-protocol': { type: 'string', default: '80' },
    'resync-interval-ms': { type: 'string', default: '30000' },
    'log-level': { type: 'string', default: 'info' },
    'no-security-groups': { type: 'boolean', default: false },
    'host-service': { type: 'string', multiple: true, default: [] },
    'iptables-backend': { type: 'string', default: 'default' },
    help: { type: 'boolean', default: false },
  },
});

if (values.help || !values.datastore) {
  console.log(`usage: calyx-agent --datastore <url> [--hostname <name>] [--netns <ns>] [--state-dir <dir>]
                   [--route-protocol 80] [--resync-interval-ms 30000] [--log-level info]
                   [--host-service tcp:80@169.254.169.254]… [--iptables-backend default|nft|legacy]
                   [--no-security-groups]
  <url>: memory://name, etcd://host:port[,host:port][/namespace], etcds://…?ca=&cert=&key=
  --host-service: what VMs may reach on their host besides DHCP, DNS and ping (repeatable)`);
  process.exit(values.help ? 0 : 2);
}

const hostServices = values['host-service'].map((spec) => {
  const m = /^(tcp|udp):(\d{1,5})(?:@([0-9a-fA-F.:]+))?$/.exec(spec);
  if (!m || Number(m[2]) < 1 || Number(m[2]) > 65535) {
    console.error(`--host-service ${spec}: expected tcp|udp:port[@address]`);
    process.exit(2);
  }
  return {
    protocol: m[1] as 'tcp' | 'udp',
    port: Number(m[2]),
    ...(m[3] ? { destination: m[3] } : {}),
  };
});
const backend = values['iptables-backend'];
if (backend !== 'default' && backend !== 'nft' && backend !== 'legacy') {
  console.error(`--iptables-backend ${backend}: expected default, nft or legacy`);
  process.exit(2);
}

const logger = pino({ level: values['log-level'] });
const store = await createDatastore(values.datastore, {
  backends: [new MemoryBackend(), new EtcdBackend()],
  logger,
});
const agent = createAgent(
  store,
  agentConfig({
    hostname: values.hostname,
    stateDir: values['state-dir'],
    routeProtocol: Number(values['route-protocol']),
    resyncIntervalMs: Number(values['resync-interval-ms']),
    securityGroups: !values['no-security-groups'],
    hostServices,
    iptablesBackend: backend,
    ...(values.netns ? { netns: values.netns } : {}),
  }),
  { logger },
);
const shutdown = async (signal: string): Promise<void> => {
  logger.info({ signal }, 'stopping (the dataplane stays as it is)');
  await agent.close();
  await store.close();
  process.exit(0);
};
process.once('SIGINT', () => void shutdown('SIGINT'));
process.once('SIGTERM', () => void shutdown('SIGTERM'));
await agent.start();

#!/usr/bin/env node
// `calyx-dhcp-agent --datastore <url> [--hostname <name>] [--state-dir DIR] [--layout per-host|per-network]`
import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { createDatastore } from '@calyx/datastore';
import { MemoryBackend } from '@calyx/datastore-memory';
import { EtcdBackend } from '@calyx/datastore-etcd';
import { createDhcpAgent, dhcpAgentConfig } from '../index.js';

const { values } = parseArgs({
  options: {
    hostname: { type: 'string', default: hostname() },
    datastore: { type: 'string' },
    netns: { type: 'string' },
    'state-dir': { type: 'string', default: '/var/lib/calyx/dhcp' },
    layout: { type: 'string', default: 'per-host' },
    domain: { type: 'string', default: 'calyxlocal' },
    'log-level': { type: 'string', default: 'info' },
    help: { type: 'boolean', default: false },
  },
});
if (values.help || !values.datastore || !['per-host', 'per-network'].includes(values.layout)) {
  console.log(
    'usage: calyx-dhcp-agent --datastore <url> [--hostname <name>] [--netns NS] [--state-dir DIR] [--layout per-host|per-network] [--domain D]',
  );
  process.exit(values.help ? 0 : 2);
}
const logger = pino({ level: values['log-level'] });
const store = await createDatastore(values.datastore, {
  backends: [new MemoryBackend(), new EtcdBackend()],
  logger,
});
const agent = createDhcpAgent(
  store,
  dhcpAgentConfig({
    hostname: values.hostname,
    stateDir: values['state-dir'],
    layout: values.layout as 'per-host' | 'per-network',
    domain: values.domain,
    ...(values.netns ? { netns: values.netns } : {}),
  }),
  { logger },
);
const shutdown = async (): Promise<void> => {
  await agent.close();
  await store.close();
  process.exit(0);
};
process.once('SIGINT', () => void shutdown());
process.once('SIGTERM', () => void shutdown());
await agent.start();

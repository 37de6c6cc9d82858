#!/usr/bin/env node
// The per-host agent as a program: `calyx-agent --hostname compute-1 --datastore etcd://10.0.0.5:2379`.
import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { createDatastore } from '@calyx/datastore';
import { MemoryBackend } from '@calyx/datastore-memory';
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
    help: { type: 'boolean', default: false },
  },
});

if (values.help || !values.datastore) {
  console.log(`usage: calyx-agent --datastore <url> [--hostname <name>] [--netns <ns>] [--state-dir <dir>]
                   [--route-protocol 80] [--resync-interval-ms 30000] [--log-level info]`);
  process.exit(values.help ? 0 : 2);
}

const logger = pino({ level: values['log-level'] });
const store = await createDatastore(values.datastore, { backends: [new MemoryBackend()], logger });
const agent = createAgent(
  store,
  agentConfig({
    hostname: values.hostname,
    stateDir: values['state-dir'],
    routeProtocol: Number(values['route-protocol']),
    resyncIntervalMs: Number(values['resync-interval-ms']),
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

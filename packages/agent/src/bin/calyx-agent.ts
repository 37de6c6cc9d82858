#!/usr/bin/env node
// The per-host agent as a program: `calyx-agent --hostname compute-1 --datastore etcd://10.0.0.5:2379`.
// Settings: defaults < --config file (YAML/JSON) < CALYX_AGENT_* environment < flags.
import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { healthFromFlags, loadConfig, runService } from '@calyx/config';
import { createDatastore } from '@calyx/datastore';
import { MemoryBackend } from '@calyx/datastore-memory';
import { EtcdBackend } from '@calyx/datastore-etcd';
import { RedisBackend } from '@calyx/datastore-redis';
import { agentConfigFromSettings, agentSettingsSchema, createAgent } from '../index.js';

const USAGE = `usage: calyx-agent [--config FILE] [--datastore URL] [--hostname NAME] [--netns NS]
                   [--state-dir DIR] [--route-protocol 80] [--resync-interval-ms 30000]
                   [--host-service tcp:80@169.254.169.254]… [--iptables-backend default|nft|legacy]
                   [--no-security-groups] [--liveness-ttl-seconds 10]
                   [--health-address 127.0.0.1:9099 | --no-health] [--log-level info]
  URL: memory://name, etcd://host:port[,host:port][/namespace], etcds://…?ca=&cert=&key=
  Every setting can also come from the file or from CALYX_AGENT_<SETTING> (docs/operations.md).`;

let values;
try {
  ({ values } = parseArgs({
    options: {
      config: { type: 'string' },
      hostname: { type: 'string' },
      datastore: { type: 'string' },
      netns: { type: 'string' },
      'state-dir': { type: 'string' },
      'route-protocol': { type: 'string' },
      'resync-interval-ms': { type: 'string' },
      'log-level': { type: 'string' },
      'no-security-groups': { type: 'boolean' },
      'host-service': { type: 'string', multiple: true },
      'iptables-backend': { type: 'string' },
      'liveness-ttl-seconds': { type: 'string' },
      'health-address': { type: 'string' },
      'no-health': { type: 'boolean' },
      help: { type: 'boolean', default: false },
    },
  }));
} catch (e) {
  console.error(`${(e as Error).message}\n${USAGE}`);
  process.exit(2);
}
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}

const num = (v: string | undefined) => (v === undefined ? undefined : Number(v));
let settings;
try {
  settings = await loadConfig(agentSettingsSchema, {
    ...(values.config ? { file: values.config } : {}),
    env: process.env,
    envPrefix: 'CALYX_AGENT_',
    what: 'calyx-agent configuration',
    defaults: { hostname: hostname() },
    overrides: {
      hostname: values.hostname,
      datastore: values.datastore,
      netns: values.netns,
      stateDir: values['state-dir'],
      routeProtocol: num(values['route-protocol']),
      resyncIntervalMs: num(values['resync-interval-ms']),
      logLevel: values['log-level'],
      securityGroups: values['no-security-groups'] ? false : undefined,
      hostServices: values['host-service'],
      iptablesBackend: values['iptables-backend'],
      livenessTtlSeconds: num(values['liveness-ttl-seconds']),
      health: healthFromFlags({ noHealth: values['no-health'], address: values['health-address'] }),
    },
  });
} catch (e) {
  console.error(`${(e as Error).message}\n${USAGE}`);
  process.exit(2);
}

const logger = pino({ level: settings.logLevel });
const store = await createDatastore(settings.datastore, {
  backends: [new MemoryBackend(), new EtcdBackend(), new RedisBackend()],
  logger,
  // Started before its datastore is reachable (boot order), it keeps trying: no probe.
  probe: false,
});
const agent = createAgent(store, agentConfigFromSettings(settings), { logger });
logger.info({ host: settings.hostname, datastore: settings.datastore }, 'starting');
// Stopping leaves the dataplane as it is; a signal during start is a clean stop (exit 0).
process.exit(
  await runService(
    {
      start: () => agent.start(),
      stop: async () => {
        try {
          await agent.close();
        } finally {
          await store.close();
        }
      },
    },
    { logger },
  ),
);

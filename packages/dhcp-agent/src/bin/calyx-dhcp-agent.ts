#!/usr/bin/env node
// `calyx-dhcp-agent --datastore <url> [--hostname <name>] [--state-dir DIR] [--layout per-host|per-network]`
// Settings: defaults < --config file (YAML/JSON) < CALYX_DHCP_AGENT_* environment < flags.
import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { healthFromFlags, loadConfig, runService } from '@calyx/config';
import { createDatastore } from '@calyx/datastore';
import { MemoryBackend } from '@calyx/datastore-memory';
import { EtcdBackend } from '@calyx/datastore-etcd';
import { RedisBackend } from '@calyx/datastore-redis';
import { createDhcpAgent, dhcpAgentConfigFromSettings, dhcpAgentSettingsSchema } from '../index.js';

const USAGE = `usage: calyx-dhcp-agent [--config FILE] [--datastore URL] [--hostname NAME] [--netns NS]
                        [--state-dir DIR] [--layout per-host|per-network] [--domain D]
                        [--health-address 127.0.0.1:9098 | --no-health] [--log-level info]
  Every setting can also come from the file or from CALYX_DHCP_AGENT_<SETTING> (docs/operations.md).`;

let values;
try {
  ({ values } = parseArgs({
    options: {
      config: { type: 'string' },
      hostname: { type: 'string' },
      datastore: { type: 'string' },
      netns: { type: 'string' },
      'state-dir': { type: 'string' },
      layout: { type: 'string' },
      domain: { type: 'string' },
      'health-address': { type: 'string' },
      'no-health': { type: 'boolean' },
      'log-level': { type: 'string' },
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
let settings;
try {
  settings = await loadConfig(dhcpAgentSettingsSchema, {
    ...(values.config ? { file: values.config } : {}),
    env: process.env,
    envPrefix: 'CALYX_DHCP_AGENT_',
    what: 'calyx-dhcp-agent configuration',
    defaults: { hostname: hostname() },
    overrides: {
      hostname: values.hostname,
      datastore: values.datastore,
      netns: values.netns,
      stateDir: values['state-dir'],
      layout: values.layout,
      domain: values.domain,
      logLevel: values['log-level'],
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
const agent = createDhcpAgent(store, dhcpAgentConfigFromSettings(settings), { logger });
logger.info({ host: settings.hostname, datastore: settings.datastore }, 'starting');
// Stopping leaves dnsmasq serving; a signal during start is a clean stop (exit 0).
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

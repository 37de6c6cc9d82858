#!/usr/bin/env node
// `calyx-dhcp-agent --datastore <url> [--hostname <name>] [--state-dir DIR] [--layout per-host|per-network]`
// Settings: defaults < --config file (YAML/JSON) < CALYX_DHCP_AGENT_* environment < flags.
import { hostname } from 'node:os';
import pino from 'pino';
import { flagString as str, healthFromFlags, runProgram, serviceOf } from '@calyx/config';
import { createDatastore } from '@calyx/datastore';
import { MemoryBackend } from '@calyx/datastore-memory';
import { EtcdBackend } from '@calyx/datastore-etcd';
import { RedisBackend } from '@calyx/datastore-redis';
import { createDhcpAgent, dhcpAgentConfigFromSettings, dhcpAgentSettingsSchema } from '../index.js';

const USAGE = `usage: calyx-dhcp-agent [--config FILE] [--datastore URL] [--hostname NAME] [--netns NS]
                        [--state-dir DIR] [--layout per-host|per-network] [--domain D]
                        [--health-address 127.0.0.1:9098 | --no-health] [--log-level info]
  Every setting can also come from the file or from CALYX_DHCP_AGENT_<SETTING> (docs/operations.md).`;

process.exit(
  await runProgram({
    name: 'calyx-dhcp-agent',
    usage: USAGE,
    options: {
      hostname: { type: 'string' },
      datastore: { type: 'string' },
      netns: { type: 'string' },
      'state-dir': { type: 'string' },
      layout: { type: 'string' },
      domain: { type: 'string' },
      'health-address': { type: 'string' },
      'no-health': { type: 'boolean' },
      'log-level': { type: 'string' },
    },
    schema: dhcpAgentSettingsSchema,
    envPrefix: 'CALYX_DHCP_AGENT_',
    defaults: { hostname: hostname() },
    overrides: (f) => ({
      hostname: str(f.hostname),
      datastore: str(f.datastore),
      netns: str(f.netns),
      stateDir: str(f['state-dir']),
      layout: str(f.layout),
      domain: str(f.domain),
      logLevel: str(f['log-level']),
      health: healthFromFlags({
        noHealth: f['no-health'] === true,
        address: str(f['health-address']),
      }),
    }),
    logger: (s) => pino({ level: s.logLevel }),
    describe: (s) => ({ host: s.hostname }),
    // Stopping leaves dnsmasq serving.
    open: async (s, logger) => {
      const store = await createDatastore(s.datastore, {
        backends: [new MemoryBackend(), new EtcdBackend(), new RedisBackend()],
        logger,
        // Started before its datastore is reachable (boot order), it keeps trying; refused
        // (credentials, role), it stops here with the reason.
        probe: 'refusals',
      });
      return serviceOf(createDhcpAgent(store, dhcpAgentConfigFromSettings(s), { logger }), store);
    },
  }),
);

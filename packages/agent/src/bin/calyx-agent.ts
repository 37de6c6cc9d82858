#!/usr/bin/env node
// The per-host agent as a program: `calyx-agent --hostname compute-1 --datastore etcd://10.0.0.5:2379`.
// Settings: defaults < --config file (YAML/JSON) < CALYX_AGENT_* environment < flags.
import { hostname } from 'node:os';
import pino from 'pino';
import {
  flagNumber as num,
  flagString as str,
  healthFromFlags,
  runProgram,
  serviceOf,
} from '@calyx/config';
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

process.exit(
  await runProgram({
    name: 'calyx-agent',
    usage: USAGE,
    options: {
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
    },
    schema: agentSettingsSchema,
    envPrefix: 'CALYX_AGENT_',
    defaults: { hostname: hostname() },
    overrides: (f) => ({
      hostname: str(f.hostname),
      datastore: str(f.datastore),
      netns: str(f.netns),
      stateDir: str(f['state-dir']),
      routeProtocol: num(f['route-protocol']),
      resyncIntervalMs: num(f['resync-interval-ms']),
      logLevel: str(f['log-level']),
      securityGroups: f['no-security-groups'] ? false : undefined,
      hostServices: f['host-service'],
      iptablesBackend: str(f['iptables-backend']),
      livenessTtlSeconds: num(f['liveness-ttl-seconds']),
      health: healthFromFlags({
        noHealth: f['no-health'] === true,
        address: str(f['health-address']),
      }),
    }),
    logger: (s) => pino({ level: s.logLevel }),
    describe: (s) => ({ host: s.hostname }),
    // Stopping leaves the dataplane as it is.
    open: async (s, logger) => {
      const store = await createDatastore(s.datastore, {
        backends: [new MemoryBackend(), new EtcdBackend(), new RedisBackend()],
        logger,
        // Started before its datastore is reachable (boot order), it keeps trying; refused
        // (credentials, role), it stops here with the reason.
        probe: 'refusals',
      });
      return serviceOf(createAgent(store, agentConfigFromSettings(s), { logger }), store);
    },
  }),
);

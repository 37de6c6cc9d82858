#!/usr/bin/env node
// `npm run demo [-- --datastore <url>] [--walkthrough]`
import { parseArgs } from 'node:util';
import pino from 'pino';
import { createDatastore, type Datastore } from '@calyx/datastore';
import { MemoryBackend, createMemoryDatastore } from '@calyx/datastore-memory';
import { missingPrerequisites } from '@calyx/core/testing';
import { runDemo } from './run-demo.js';
import { datastoreWalkthrough } from './datastore-walkthrough.js';

const { values } = parseArgs({
  options: {
    datastore: { type: 'string' },
    walkthrough: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});

if (values.help) {
  console.log(`usage: npm run demo [-- --datastore <url>] [--walkthrough]

Builds 2 compute hosts, a route reflector and an edge router in network namespaces, runs the
Calyx driver and one agent per host over the datastore (embedded memory store by default),
plugs 2 VMs into each compute host and shows BGP sessions, learned routes and pings.
  --datastore <url>  memory://name (default)
  --walkthrough      only the datastore walkthrough (no namespaces, no root needed)`);
  process.exit(0);
}

const logger = pino({ level: process.env.CALYX_LOG_LEVEL ?? 'warn' }, pino.destination(2));
const backends = [new MemoryBackend()];
const url = values.datastore ?? 'memory://demo';

if (values.walkthrough) {
  const store = createMemoryDatastore();
  try {
    await datastoreWalkthrough(store, (l) => console.log(l));
  } finally {
    await store.close();
  }
  process.exit(0);
}

const missing = missingPrerequisites({
  root: true,
  commands: ['ip', 'bird', 'birdc', 'ping', 'sysctl'],
});
if (missing.length) {
  console.error(
    `The demo builds network namespaces and runs BIRD: it needs ${missing.join(', ')}.`,
  );
  console.error('Run it as root on Debian 12 (npm run demo installs the packages it needs).');
  process.exit(1);
}

const openStore = async (): Promise<Datastore> => createDatastore(url, { backends, logger });
const code = await runDemo({ datastoreUrl: url, openStore, logger, print: (l) => console.log(l) });
process.exit(code);

#!/usr/bin/env node
// `npm run demo [-- --datastore <url>] [--walkthrough]`
import { parseArgs } from 'node:util';
import pino from 'pino';
import { createDatastore, type Datastore } from '@calyx/datastore';
import { MemoryBackend, createMemoryDatastore } from '@calyx/datastore-memory';
import { EtcdBackend } from '@calyx/datastore-etcd';
import { RedisBackend } from '@calyx/datastore-redis';
import { startEtcd, startRedis, type StartedEtcd, type StartedRedis } from '@calyx/testbed';
import { missingPrerequisites } from '@calyx/core/testing';
import { runDemo } from './run-demo.js';
import { datastoreWalkthrough } from './datastore-walkthrough.js';

const { values } = parseArgs({
  options: {
    datastore: { type: 'string' },
    etcd: { type: 'boolean', default: false },
    redis: { type: 'boolean', default: false },
    walkthrough: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});

if (values.help) {
  console.log(`usage: npm run demo [-- --datastore <url> | --etcd | --redis] [--walkthrough]

Builds 2 compute hosts, a route reflector and an edge router in network namespaces, runs the
Calyx driver and one agent per host over the datastore (embedded memory store by default),
plugs 2 VMs into each compute host and shows BGP sessions, learned routes and pings.
  --datastore <url>  memory://name (default), etcd://host:port[,host:port][/namespace],
                     etcds://… (TLS: ?ca=&cert=&key=), redis://host:port[/db][?namespace=…],
                     redis+sentinel://s1:26379,s2:26379/<master>
  --etcd             start a private etcd (Debian's etcd-server) on loopback and run over it
  --redis            start a private redis-server on loopback and run over it
  --walkthrough      only the datastore walkthrough (no namespaces, no root needed)`);
  process.exit(0);
}

const logger = pino({ level: process.env.CALYX_LOG_LEVEL ?? 'warn' }, pino.destination(2));
const backends = [new MemoryBackend(), new EtcdBackend(), new RedisBackend()];
let url = values.datastore ?? 'memory://demo';

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

let etcd: StartedEtcd | undefined;
if (values.etcd) {
  if (missingPrerequisites({ commands: ['etcd'] }).length) {
    console.error('--etcd needs etcd (Debian: apt-get install etcd-server).');
    process.exit(1);
  }
  etcd = await startEtcd();
  url = `etcd://127.0.0.1:${etcd.clientPort}/calyx-demo`;
}
let redis: StartedRedis | undefined;
if (values.redis) {
  if (missingPrerequisites({ commands: ['redis-server'] }).length) {
    console.error('--redis needs redis-server (Debian: apt-get install redis-server).');
    process.exit(1);
  }
  redis = await startRedis();
  url = `redis://127.0.0.1:${redis.port}/?namespace=calyx-demo`;
}
const openStore = async (): Promise<Datastore> => createDatastore(url, { backends, logger });
const code = await runDemo({
  datastoreUrl: url,
  openStore,
  logger,
  print: (l) => console.log(l),
}).finally(async () => {
  await etcd?.stop();
  await redis?.stop();
});
process.exit(code);

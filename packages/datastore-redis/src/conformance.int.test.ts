import { afterAll, beforeAll } from 'vitest';
import { describeIntegration } from '@calyx/core/testing';
import { runConformanceSuite } from '@calyx/datastore/testing';
import { startRedis, type StartedRedis } from '@calyx/testbed';
import { RedisDatastore } from './index.js';

describeIntegration('redis adapter', { commands: ['redis-server'] }, () => {
  let redis: StartedRedis;
  let n = 0;
  beforeAll(async () => {
    redis = await startRedis();
  }, 30_000);
  afterAll(async () => {
    await redis?.stop();
  });

  runConformanceSuite({
    name: 'redis',
    // One server, a fresh namespace (hash tag) per test: each is a store of its own.
    async open() {
      // Small pages, so the large-list test crosses many page boundaries.
      return new RedisDatastore({
        redis: { host: '127.0.0.1', port: redis.port },
        namespace: `conformance-${n++}`,
        pageSize: 97,
      });
    },
    async connect(store) {
      return (store as RedisDatastore).connect();
    },
    leaseTtlSeconds: 1,
    propertyRuns: 30,
  });
});

import { afterAll, beforeAll } from 'vitest';
import { describeIntegration } from '@calyx/core/testing';
import { runConformanceSuite } from '@calyx/datastore/testing';
import { startEtcd, type StartedEtcd } from '@calyx/testbed';
import { EtcdDatastore } from './index.js';

describeIntegration('etcd adapter', { commands: ['etcd'] }, () => {
  let etcd: StartedEtcd;
  let n = 0;
  beforeAll(async () => {
    etcd = await startEtcd();
  }, 30_000);
  afterAll(async () => {
    await etcd?.stop();
  });

  runConformanceSuite({
    name: 'etcd',
    // One server, a fresh namespace per test: revisions are server-wide, keys are not.
    async open() {
      // Small pages, so the large-list test crosses many page boundaries.
      return new EtcdDatastore({
        endpoints: [etcd.endpoint],
        namespace: `/conformance-${n++}`,
        pageSize: 997,
      });
    },
    async connect(store) {
      return (store as EtcdDatastore).connect();
    },
    leaseTtlSeconds: 1,
    propertyRuns: 30,
  });
});

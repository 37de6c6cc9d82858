import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeIntegration } from '@calyx/core/testing';
import { within } from '@calyx/datastore/testing';
import { EtcdDatastore } from '@calyx/datastore-etcd';
import { HaDriver } from '@calyx/driver';
import { prefixes } from '@calyx/model';
import { startEtcd, type StartedEtcd } from '@calyx/testbed';

describeIntegration('driver high availability on etcd', { commands: ['etcd'] }, () => {
  let etcd: StartedEtcd;
  beforeAll(async () => {
    etcd = await startEtcd();
  }, 30_000);
  afterAll(async () => {
    await etcd?.stop();
  });

  it('takes over within its takeover time when the active driver is killed; nothing it wrote lands after', async () => {
    const ttl = 3;
    const namespace = '/ha-kill';
    // driver-a in its own process, killed with SIGKILL: no goodbye, its lease just runs out.
    const child = spawn(
      process.execPath,
      [
        '--conditions=@calyx/source',
        '--import',
        'tsx',
        join(import.meta.dirname, 'ha-driver.fixture.ts'),
        etcd.endpoint,
        namespace,
        'driver-a',
        String(ttl),
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
    const next = async () =>
      JSON.parse(String((await within(30_000, 'driver-a', lines.next())).value)) as Record<
        string,
        unknown
      >;
    const b = new HaDriver(new EtcdDatastore({ endpoints: [etcd.endpoint], namespace }), {
      instanceId: 'driver-b',
      takeoverSeconds: ttl,
    });
    try {
      expect(await next()).toMatchObject({ active: true });
      b.start();
      await expect(b.driver()).rejects.toThrow(/the leader is driver-a/);
      for (let i = 0; i < 20; i++) expect(await next()).toHaveProperty('wrote');
      const killedAt = performance.now();
      child.kill('SIGKILL');
      await within(2 * ttl * 1000, 'driver-b taking over', b.whenActive());
      const takeoverMs = performance.now() - killedAt;
      console.log(
        `driver-a killed: driver-b active after ${takeoverMs.toFixed(0)} ms (takeover bound ${ttl} s)`,
      );
      expect(takeoverMs).toBeLessThanOrEqual(ttl * 1000);
      const since = b.activeSince!;
      const db = await b.driver();
      await db.createNetwork({ id: 'net-b' });
      const store = new EtcdDatastore({ endpoints: [etcd.endpoint], namespace });
      try {
        const written = (await store.list(prefixes.network)).items;
        const fromA = written.filter((kv) => kv.key.includes('net-driver-a-'));
        expect(fromA.length).toBeGreaterThanOrEqual(20);
        for (const kv of fromA) expect(kv.modRevision < since).toBe(true);
      } finally {
        await store.close();
      }
    } finally {
      child.kill('SIGKILL');
      await b.close();
    }
  }, 60_000);
});

import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeIntegration } from '@calyx/core/testing';
import {
  DatastoreError,
  UnavailableError,
  createDatastore,
  type Datastore,
} from '@calyx/datastore';
import { WatchReader, describeMessage } from '@calyx/datastore/testing';
import { freePort, makeTestPki, startRedis, type StartedRedis, type TestPki } from '@calyx/testbed';
import { RedisBackend, RedisDatastore } from './index.js';

/** A put, a watch event, a list and a lease: the store works end to end. */
async function exercise(store: Datastore): Promise<void> {
  const w = new WatchReader(store, '/sec/', { fromRevision: (await store.revision()) + 1n });
  try {
    const lease = await store.grantLease(30);
    await store.put('/sec/a', 'x', { lease: lease.id });
    expect(describeMessage(await w.next(5000))).toBe('put /sec/a=x');
    expect((await store.list('/sec/')).items.map((kv) => kv.value)).toEqual(['x']);
    await store.revokeLease(lease.id);
    expect(describeMessage(await w.next(5000))).toBe('del /sec/a');
  } finally {
    w.close();
  }
}

describeIntegration(
  'redis adapter with TLS client certificates and with ACL users',
  { commands: ['redis-server', 'openssl'] },
  () => {
    let dir: string;
    let pki: TestPki;
    let tlsRedis: StartedRedis;
    let aclRedis: StartedRedis;
    const backends = [new RedisBackend()];
    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), 'calyx-pki-'));
      pki = await makeTestPki(dir);
      const tlsPort = await freePort();
      tlsRedis = await startRedis({
        port: tlsPort,
        extraArgs: [
          '--port',
          '0',
          '--tls-port',
          String(tlsPort),
          '--tls-cert-file',
          pki.serverCert,
          '--tls-key-file',
          pki.serverKey,
          '--tls-ca-cert-file',
          pki.ca,
          '--tls-auth-clients',
          'yes',
        ],
      });
      // The only user may touch its own store's keys ({calyx-ns}:*) and nothing else.
      aclRedis = await startRedis({
        extraArgs: [
          '--user',
          'default',
          'off',
          '--user',
          'calyx',
          'on',
          '>s3cret',
          '~{calyx-ns}:*',
          '+@all',
        ],
      });
    }, 60_000);
    afterAll(async () => {
      await tlsRedis?.stop();
      await aclRedis?.stop();
      await rm(dir, { recursive: true, force: true });
    });

    it('talks TLS with a client certificate, from options and from a rediss:// URL', async () => {
      const store = new RedisDatastore({
        redis: {
          host: '127.0.0.1',
          port: tlsRedis.port,
          tls: {
            ca: await readFile(pki.ca),
            cert: await readFile(pki.clientCert),
            key: await readFile(pki.clientKey),
          },
        },
        namespace: 'tls-options',
      });
      try {
        await exercise(store);
      } finally {
        await store.close();
      }
      const fromUrl = await createDatastore(
        `rediss://127.0.0.1:${tlsRedis.port}?namespace=tls-url&ca=${pki.ca}&cert=${pki.clientCert}&key=${pki.clientKey}`,
        { backends },
      );
      try {
        await exercise(fromUrl);
      } finally {
        await fromUrl.close();
      }
    });

    it('is refused without a client certificate', async () => {
      await expect(
        createDatastore(`rediss://127.0.0.1:${tlsRedis.port}?ca=${pki.ca}&timeoutMs=1000`, {
          backends,
        }),
      ).rejects.toBeInstanceOf(UnavailableError);
    });

    it('authenticates as an ACL user and stays inside the keys it was granted', async () => {
      const store = await createDatastore(
        `redis://calyx:s3cret@127.0.0.1:${aclRedis.port}?namespace=calyx-ns`,
        { backends },
      );
      try {
        await exercise(store);
      } finally {
        await store.close();
      }
      // Another namespace is other keys: refused, never silently mixed.
      const other = new RedisDatastore({
        redis: { host: '127.0.0.1', port: aclRedis.port, username: 'calyx', password: 's3cret' },
        namespace: 'other-ns',
      });
      try {
        await expect(other.put('/sec/x', 'v')).rejects.toMatchObject({ code: 'PERMISSION_DENIED' });
        await expect(other.get('/sec/x')).rejects.toMatchObject({ code: 'PERMISSION_DENIED' });
      } finally {
        await other.close();
      }
      const wrong = createDatastore(
        `redis://calyx:wrong@127.0.0.1:${aclRedis.port}?namespace=calyx-ns`,
        { backends },
      );
      await expect(wrong).rejects.toBeInstanceOf(DatastoreError);
      await expect(wrong).rejects.toMatchObject({ code: 'PERMISSION_DENIED' });
    });
  },
);

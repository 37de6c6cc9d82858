import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeIntegration } from '@calyx/core/testing';
import { UnavailableError, createDatastore } from '@calyx/datastore';
import { makeTestPki, startEtcd, type StartedEtcd, type TestPki } from '@calyx/testbed';
import { EtcdBackend, EtcdDatastore } from './index.js';

const etcdctl = (endpoint: string, args: string[]) =>
  new Promise<string>((resolve, reject) => {
    const c = spawn('etcdctl', ['--endpoints', endpoint, ...args], {
      env: { ...process.env, ETCDCTL_API: '3' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    c.stdout.on('data', (d: Buffer) => (out += d.toString()));
    c.stderr.on('data', (d: Buffer) => (out += d.toString()));
    c.on('exit', (code) =>
      code === 0 ? resolve(out) : reject(new Error(`etcdctl ${args.join(' ')}: ${out}`)),
    );
  });

describeIntegration(
  'etcd adapter with TLS client certificates and with user/password auth',
  { commands: ['etcd', 'etcdctl', 'openssl'] },
  () => {
    let dir: string;
    let pki: TestPki;
    let tlsEtcd: StartedEtcd;
    let authEtcd: StartedEtcd;
    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), 'calyx-pki-'));
      pki = await makeTestPki(dir);
      tlsEtcd = await startEtcd({ tls: pki });
      authEtcd = await startEtcd();
      await etcdctl(authEtcd.endpoint, ['user', 'add', 'root:root-secret']);
      await etcdctl(authEtcd.endpoint, ['user', 'add', 'calyx:s3cret']);
      await etcdctl(authEtcd.endpoint, ['role', 'add', 'calyx']);
      await etcdctl(authEtcd.endpoint, [
        'role',
        'grant-permission',
        'calyx',
        '--prefix=true',
        'readwrite',
        '/calyx-ns/',
      ]);
      await etcdctl(authEtcd.endpoint, ['user', 'grant-role', 'calyx', 'calyx']);
      await etcdctl(authEtcd.endpoint, ['auth', 'enable']);
    }, 60_000);
    afterAll(async () => {
      await tlsEtcd?.stop();
      await authEtcd?.stop();
      await rm(dir, { recursive: true, force: true });
    });

    it('talks TLS with a client certificate, from options and from an etcds:// URL', async () => {
      const store = new EtcdDatastore({
        endpoints: [tlsEtcd.endpoint],
        tls: {
          ca: await readFile(pki.ca),
          cert: await readFile(pki.clientCert),
          key: await readFile(pki.clientKey),
        },
      });
      try {
        await store.put('/tls/k', 'v');
        expect((await store.get('/tls/k'))?.value).toBe('v');
        const w = store.watch('/tls/', { fromRevision: 1n })[Symbol.asyncIterator]();
        expect((await w.next()).value).toMatchObject({ type: 'put' });
        await w.return?.(undefined);
      } finally {
        await store.close();
      }
      const url = `etcds://127.0.0.1:${tlsEtcd.clientPort}/ns?ca=${pki.ca}&cert=${pki.clientCert}&key=${pki.clientKey}`;
      const viaUrl = await createDatastore(url, { backends: [new EtcdBackend()] });
      try {
        await viaUrl.put('/k', 'namespaced');
        expect((await viaUrl.get('/k'))?.value).toBe('namespaced');
      } finally {
        await viaUrl.close();
      }
    });

    it('is refused without a client certificate', async () => {
      const noCert = new EtcdDatastore({
        endpoints: [tlsEtcd.endpoint],
        tls: { ca: await readFile(pki.ca) },
        requestTimeoutMs: 2000,
      });
      try {
        await expect(noCert.get('/tls/k')).rejects.toBeInstanceOf(UnavailableError);
      } finally {
        await noCert.close();
      }
    });

    it('authenticates with a user and password, limited to what its role may touch', async () => {
      const url = `etcd://calyx:s3cret@127.0.0.1:${authEtcd.clientPort}/calyx-ns`;
      const store = await createDatastore(url, { backends: [new EtcdBackend()] });
      try {
        await store.put('/calyx/v1/network/n1', '{}');
        expect((await store.list('/calyx/v1/')).items.map((kv) => kv.key)).toEqual([
          '/calyx/v1/network/n1',
        ]);
      } finally {
        await store.close();
      }
      const outside = new EtcdDatastore({
        endpoints: [authEtcd.endpoint],
        auth: { username: 'calyx', password: 's3cret' },
      });
      try {
        await expect(outside.put('/elsewhere', 'x')).rejects.toThrow(/permission denied/);
      } finally {
        await outside.close();
      }
      const wrong = new EtcdDatastore({
        endpoints: [authEtcd.endpoint],
        auth: { username: 'calyx', password: 'nope' },
      });
      try {
        await expect(wrong.get('/calyx-ns/x')).rejects.toThrow(/authentication failed/);
      } finally {
        await wrong.close();
      }
    });
  },
);

import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ConflictError, UnavailableError, type Datastore } from '@calyx/datastore';
import { MemoryBackend, createMemoryDatastore } from '@calyx/datastore-memory';
import { ValidationError } from '@calyx/model';
import { EXIT, ResourceMissingError, UsageError, exitCodeOf } from './exit-codes.js';
import { calyxctl, seed, tempDirFixture } from './harness.js';

describe('calyxctl: program', () => {
  it('prints help (exit 0) and the version; no command or an unknown option is a usage error (2)', async () => {
    const help = await calyxctl(['--help']);
    expect(help.code).toBe(EXIT.OK);
    expect(help.stdout).toContain('Usage: calyxctl');
    expect(help.stdout).toContain('Exit codes:');
    const sub = await calyxctl(['ipam', '--help']);
    expect(sub.stdout).toMatch(/show[\s\S]*check[\s\S]*repair/);
    expect((await calyxctl(['--version'])).stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
    const none = await calyxctl([]);
    expect(none.code).toBe(EXIT.USAGE);
    expect(none.stderr).toContain('Usage: calyxctl');
    const bad = await calyxctl(['get', 'network', '--colour']);
    expect(bad.code).toBe(EXIT.USAGE);
    expect(bad.stderr).toMatch(/unknown option '--colour'/);
    const fmt = await calyxctl(['get', 'network', '-o', 'xml'], {
      datastore: createMemoryDatastore(),
    });
    expect(fmt.code).toBe(EXIT.USAGE);
    expect(fmt.stderr).toMatch(/Allowed choices are table, json, yaml/);
    expect((await calyxctl(['gte'])).stderr).toMatch(/Did you mean get\?/);
  });

  it('maps typed errors to exit codes', () => {
    expect(exitCodeOf(new UsageError('x'))).toBe(2);
    expect(exitCodeOf(new ValidationError('Network', 'n', []))).toBe(2);
    expect(exitCodeOf(new ResourceMissingError('x'))).toBe(3);
    expect(exitCodeOf(new UnavailableError('x'))).toBe(4);
    expect(exitCodeOf(new ConflictError('/k', 1n, 2n))).toBe(5);
    expect(exitCodeOf(new Error('x'))).toBe(1);
  });
});

describe('calyxctl: choosing the datastore', () => {
  const tmp = tempDirFixture('calyxctl-run');
  const backend = new MemoryBackend();
  beforeAll(async () => {
    const store = await backend.open(new URL('memory://shared'), {});
    await seed(store);
  });

  const names = (stdout: string) =>
    stdout
      .trim()
      .split('\n')
      .slice(1)
      .map((l) => l.split(/\s+/)[0]);

  it('opens --datastore by URL', async () => {
    const r = await calyxctl(['--datastore', 'memory://shared', 'get', 'hosts'], {
      backends: [backend],
    });
    expect(r.code).toBe(EXIT.OK);
    expect(names(r.stdout)).toEqual(['compute-1', 'compute-2']);
  });

  it('reads the --config file (YAML or JSON), relative to the working directory', async () => {
    await writeFile(join(tmp.path, 'calyx.yaml'), 'datastore: memory://shared\n');
    await writeFile(join(tmp.path, 'calyx.json'), '{"datastore": "memory://shared"}');
    for (const file of ['calyx.yaml', 'calyx.json']) {
      const r = await calyxctl(['get', 'network', '--config', file], {
        backends: [backend],
        cwd: tmp.path,
      });
      expect(r.code).toBe(EXIT.OK);
      expect(names(r.stdout)).toEqual(['net-a']);
    }
  });

  it('takes $CALYX_DATASTORE', async () => {
    const r = await calyxctl(['get', 'subnet'], {
      backends: [backend],
      env: { CALYX_DATASTORE: 'memory://shared' },
    });
    expect(names(r.stdout)).toEqual(['sub-a']);
  });

  it('explains a missing or bad datastore and config (exit 2)', async () => {
    const none = await calyxctl(['get', 'network']);
    expect(none).toMatchObject({ code: EXIT.USAGE, stdout: '' });
    expect(none.stderr).toMatch(/^calyxctl: no datastore: pass --datastore <url>/);
    const scheme = await calyxctl(['get', 'network', '--datastore', 'zk://h:1']);
    expect(scheme.code).toBe(EXIT.USAGE);
    expect(scheme.stderr).toMatch(/no datastore backend for 'zk:\/\/h:1'/);
    const etcd = await calyxctl(['get', 'network', '--datastore', 'etcd://no-port']);
    expect(etcd.code).toBe(EXIT.USAGE);
    expect(etcd.stderr).toMatch(/must be host:port/);
    await writeFile(join(tmp.path, 'bad.yaml'), 'datastore: memory://x\nextra: 1\n');
    const cfg = await calyxctl(['get', 'network', '--config', 'bad.yaml'], { cwd: tmp.path });
    expect(cfg.code).toBe(EXIT.USAGE);
    expect(cfg.stderr).toBe(
      'calyxctl: config file bad.yaml: extra 1 is not a field of the config file\n',
    );
    const missing = await calyxctl(['get', 'network', '--config', 'nope.yaml'], { cwd: tmp.path });
    expect(missing.code).toBe(EXIT.USAGE);
  });

  it('exits 4 when the datastore cannot be reached', async () => {
    const r = await calyxctl(['get', 'network', '--datastore', 'etcd://127.0.0.1:1?timeoutMs=300']);
    expect(r.code).toBe(EXIT.UNAVAILABLE);
    expect(r.stderr).toMatch(
      /datastore etcd:\/\/127.0.0.1:1\?timeoutMs=300 \(--datastore\).*unavailable/,
    );
  }, 30_000);

  it('writes debug logs (pino JSON) to stderr with --debug, never to stdout', async () => {
    const r = await calyxctl(
      ['--debug', '--datastore', 'memory://shared', 'get', 'network', '-o', 'json'],
      {
        backends: [backend],
      },
    );
    expect(JSON.parse(r.stdout)).toHaveLength(1);
    const logs = r.stderr
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { level: number; msg: string });
    expect(logs.some((l) => l.msg === 'opening the datastore' && l.level === 20)).toBe(true);
  });

  it('closes a datastore it opened, and never one it was given', async () => {
    const given: Datastore = createMemoryDatastore();
    await calyxctl(['get', 'network'], { datastore: given });
    expect(await given.revision()).toBeGreaterThanOrEqual(0n);
  });
});

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ConfigError, envKeyToPath, loadConfig } from './index.js';

const schema = z.strictObject({
  hostname: z.string().min(1),
  resyncIntervalMs: z.number().int().min(0).default(30_000),
  health: z
    .strictObject({
      host: z.string().default('127.0.0.1'),
      port: z.number().int().min(0).max(65535),
    })
    .optional(),
  hostServices: z.array(z.string()).default([]),
});

describe('loadConfig', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'calyx-config-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true });
  });

  it('maps environment names to paths', () => {
    expect(envKeyToPath('HEALTH__PORT')).toEqual(['health', 'port']);
    expect(envKeyToPath('RESYNC_INTERVAL_MS')).toEqual(['resyncIntervalMs']);
  });

  it('layers defaults < file < environment < flags', async () => {
    const file = join(dir, 'agent.yaml');
    await writeFile(file, 'hostname: from-file\nresyncIntervalMs: 5000\nhealth:\n  port: 9099\n');
    const c = await loadConfig(schema, {
      file,
      env: {
        CALYX_AGENT_HEALTH__HOST: '10.0.0.1',
        CALYX_AGENT_RESYNC_INTERVAL_MS: '7000',
        OTHER: 'x',
      },
      envPrefix: 'CALYX_AGENT_',
      overrides: { hostname: 'from-flag', hostServices: undefined },
    });
    expect(c).toEqual({
      hostname: 'from-flag',
      resyncIntervalMs: 7000,
      health: { host: '10.0.0.1', port: 9099 },
      hostServices: [],
    });
  });

  it('reads JSON files too', async () => {
    const file = join(dir, 'agent.json');
    await writeFile(file, JSON.stringify({ hostname: 'h', hostServices: ['tcp:80'] }));
    expect((await loadConfig(schema, { file })).hostServices).toEqual(['tcp:80']);
  });

  it('reports every problem with where its value came from', async () => {
    const file = join(dir, 'bad.yaml');
    await writeFile(file, 'hostname: ""\nhealth:\n  port: 70000\nbogus: 1\n');
    const e = await loadConfig(schema, {
      file,
      env: { CALYX_AGENT_RESYNC_INTERVAL_MS: 'soon' },
      envPrefix: 'CALYX_AGENT_',
      what: 'calyx-agent configuration',
    }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ConfigError);
    const issues = (e as ConfigError).issues;
    expect(issues.map((i) => [i.path, i.source])).toEqual(
      expect.arrayContaining([
        ['hostname', `file ${file}`],
        ['health.port', `file ${file}`],
        ['resyncIntervalMs', 'env CALYX_AGENT_RESYNC_INTERVAL_MS'],
        ['bogus', `file ${file}`],
      ]),
    );
    expect((e as Error).message).toMatch(/^invalid calyx-agent configuration:/);
  });

  it('says so when the file is missing or does not parse', async () => {
    await expect(loadConfig(schema, { file: join(dir, 'missing.yaml') })).rejects.toThrow(/ENOENT/);
    const file = join(dir, 'broken.json');
    await writeFile(file, '{ nope');
    await expect(loadConfig(schema, { file })).rejects.toThrow(/does not parse/);
  });
});

describe('shared settings', () => {
  it('reads the health flags', async () => {
    const { healthFromFlags } = await import('./index.js');
    expect(healthFromFlags({})).toBeUndefined();
    expect(healthFromFlags({ noHealth: true, address: '127.0.0.1:1' })).toBe(false);
    expect(healthFromFlags({ address: '10.0.0.1:9099' })).toEqual({ host: '10.0.0.1', port: 9099 });
    expect(healthFromFlags({ address: '[::1]:9099' })).toEqual({ host: '::1', port: 9099 });
  });
});

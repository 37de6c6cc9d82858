import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { chooseDatastore, loadConfig, parseConfig } from './config.js';
import { UsageError } from './exit-codes.js';

describe('config', () => {
  it('reads YAML and JSON', () => {
    expect(
      parseConfig(
        'datastore: etcd://10.0.0.5:2379/calyx\nbirdStateDir: /var/lib/calyx/agent\n',
        'c.yaml',
      ),
    ).toEqual({
      datastore: 'etcd://10.0.0.5:2379/calyx',
      birdStateDir: '/var/lib/calyx/agent',
    });
    expect(parseConfig('{"datastore": "memory://x", "netns": "h1"}', 'c.json')).toEqual({
      datastore: 'memory://x',
      netns: 'h1',
    });
  });

  it('names the file, the field and the value of what is wrong', () => {
    const bad = (text: string) => {
      try {
        parseConfig(text, 'c.yaml');
      } catch (e) {
        expect(e).toBeInstanceOf(UsageError);
        return (e as Error).message;
      }
      throw new Error('accepted');
    };
    expect(bad('birdStateDir: /x\n')).toBe('config file c.yaml: datastore is missing');
    expect(bad('datastore: 10.0.0.5:2379\n')).toMatch(
      /^config file c.yaml: datastore 10.0.0.5:2379 is not a datastore URL/,
    );
    expect(bad('datastore: memory://x\nbirdStateDir: relative\nsocket: /x\n')).toBe(
      'config file c.yaml: birdStateDir relative must be an absolute path; socket /x is not a field of the config file',
    );
    expect(bad('datastore: [\n')).toMatch(/^config file c.yaml: not valid JSON or YAML/);
    expect(bad('- a\n')).toMatch(/must be an object/);
  });

  it('loads a file relative to the working directory; a missing one is a usage error', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'calyxctl-config-'));
    try {
      await writeFile(join(dir, 'c.yaml'), 'datastore: memory://x\n');
      expect(await loadConfig('c.yaml', dir)).toEqual({ datastore: 'memory://x' });
      await expect(loadConfig('nope.yaml', dir)).rejects.toThrow(/config file nope.yaml: ENOENT/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('takes --datastore, then the config file, then $CALYX_DATASTORE', () => {
    const env = { CALYX_DATASTORE: 'etcd://e:1' };
    const cfg = { datastore: 'etcd://c:1' };
    expect(chooseDatastore('etcd://f:1', cfg, 'c.yaml', env).url).toBe('etcd://f:1');
    expect(chooseDatastore(undefined, cfg, 'c.yaml', env)).toEqual({
      url: 'etcd://c:1',
      from: 'config file c.yaml',
    });
    expect(chooseDatastore(undefined, undefined, undefined, env).from).toBe('$CALYX_DATASTORE');
    expect(() => chooseDatastore(undefined, undefined, undefined, {})).toThrow(/no datastore/);
    expect(() => chooseDatastore('localhost:2379', undefined, undefined, {})).toThrow(
      /--datastore: "localhost:2379" is not a datastore URL/,
    );
  });
});

import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { createMemoryDatastore } from '@calyx/datastore-memory';
import { parseConfig } from './config.js';
import { EXIT } from './exit-codes.js';
import { calyxctl } from './harness.js';

const readme = () => readFile(new URL('../README.md', import.meta.url), 'utf8');
const blocks = (text: string, lang: string) =>
  [...text.matchAll(new RegExp('```' + lang + '\\n([\\s\\S]*?)```', 'g'))].map((m) => m[1]!);

describe('README', () => {
  it('its config file example is a valid config', async () => {
    const [config] = blocks(await readme(), 'yaml');
    expect(parseConfig(config!, 'calyx.yaml').birdStateDir).toBe('/var/lib/calyx/agent');
  });

  it('its deployment applies, re-applies unchanged, and explains', async () => {
    const deployment = blocks(await readme(), 'yaml')[1]!;
    const datastore = createMemoryDatastore();
    const first = await calyxctl(['apply', '-f', '-'], { datastore, stdin: deployment });
    expect(first.code).toBe(EXIT.OK);
    expect(first.stdout).toContain('Endpoint port-1 created');
    const again = await calyxctl(['apply', '-f', '-'], { datastore, stdin: deployment });
    expect(again.stdout).not.toMatch(/created|configured/);
    expect((await calyxctl(['endpoint', 'explain', 'port-1'], { datastore })).code).toBe(EXIT.OK);
  });

  it('lists the exit codes the program uses', async () => {
    const text = await readme();
    for (const code of Object.values(EXIT)) expect(text).toMatch(new RegExp(`\\| ${code} +\\|`));
  });
});

import { RuleTester } from 'eslint';
import { afterAll, describe, expect, it } from 'vitest';
import { join, resolve } from 'node:path';
import plugin from './index.js';

RuleTester.afterAll = afterAll;
RuleTester.describe = describe;
RuleTester.it = it;
RuleTester.itOnly = it.only;

const root = resolve(import.meta.dirname, '..', '..');
const file = (pkg, path = 'src/index.ts') => join(root, 'packages', pkg, path);
const tester = new RuleTester({ languageOptions: { ecmaVersion: 2022, sourceType: 'module' } });

tester.run('package-boundaries', plugin.rules['package-boundaries'], {
  valid: [
    { code: "import { x } from '@calyx/netaddr';", filename: file('model') },
    { code: "import { x } from '@calyx/model';", filename: file('calc') },
    { code: "import { x } from './local.js';", filename: file('calc', 'src/a/b.ts') },
    {
      code: "import { x } from '@calyx/datastore/testing';",
      filename: file('datastore-memory', 'src/memory.test.ts'),
    },
    {
      code: "import { x } from '@calyx/testbed';",
      filename: file('dataplane-routes', 'src/routes.int.test.ts'),
    },
    { code: "import { x } from '@calyx/driver';", filename: file('agent') },
    { code: "import { x } from '@calyx/agent';", filename: file('demo') },
    { code: "import { x } from 'node:fs';", filename: file('dataplane') },
  ],
  invalid: [
    // a library importing an application
    {
      code: "import { x } from '@calyx/agent';",
      filename: file('driver'),
      errors: [{ messageId: 'libraryImportsApplication' }],
    },
    // wrong direction between libraries
    {
      code: "import { x } from '@calyx/datastore';",
      filename: file('model'),
      errors: [{ messageId: 'notAllowed' }],
    },
    {
      code: "import { x } from '@calyx/ipam';",
      filename: file('datastore'),
      errors: [{ messageId: 'notAllowed' }],
    },
    // deep imports
    {
      code: "import { x } from '@calyx/model/src/keys.js';",
      filename: file('calc'),
      errors: [{ messageId: 'deepImport' }],
    },
    {
      code: "export * from '@calyx/model/dist/index.js';",
      filename: file('calc'),
      errors: [{ messageId: 'deepImport' }],
    },
    {
      code: "const m = import('@calyx/datastore/src/syncer.js');",
      filename: file('driver'),
      errors: [{ messageId: 'deepImport' }],
    },
    // testOnly deps do not leak into production code
    {
      code: "import { x } from '@calyx/testbed';",
      filename: file('dataplane-routes'),
      errors: [{ messageId: 'notAllowed' }],
    },
    // relative import out of the package
    {
      code: "import { x } from '../../model/src/keys.js';",
      filename: file('calc'),
      errors: [{ messageId: 'leavesPackage' }],
    },
  ],
});

describe('the workspace ESLint config', () => {
  it('fails a wrong-direction import and a deep import with calyx/package-boundaries', async () => {
    const { ESLint } = await import('eslint');
    const eslint = new ESLint({ cwd: root });
    const code = [
      "import { MemoryDatastore } from '@calyx/datastore-memory';",
      "import { keys } from '@calyx/model/src/keys.js';",
      'export const x = [MemoryDatastore, keys];',
      '',
    ].join('\n');
    const [result] = await eslint.lintText(code, {
      filePath: join(root, 'packages/model/src/index.ts'),
    });
    const boundary = result.messages
      .filter((m) => m.ruleId === 'calyx/package-boundaries')
      .map((m) => m.message);
    expect(boundary).toEqual([
      "'model' (library) may not import '@calyx/datastore-memory' (library): not in its row of the dependency table (allowed: netaddr).",
      "Deep import '@calyx/model/src/keys.js': import only a package's public entry points (its package.json \"exports\").",
    ]);
  }, 30_000);
});

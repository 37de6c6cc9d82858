#!/usr/bin/env node
// Scaffolds packages/<name> with the workspace's conventions:
//   node tools/new-package.mjs <name> "<description>" [--app] [--int] [--testing]
import { mkdirSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';

const [name, description = '', ...flags] = process.argv.slice(2);
if (!name || !/^[a-z][a-z0-9-]*$/.test(name)) {
  console.error('usage: new-package.mjs <name> "<description>" [--app] [--int] [--testing]');
  process.exit(2);
}
const dir = join(import.meta.dirname, '..', 'packages', name);
if (existsSync(dir)) {
  console.error(`${dir} exists`);
  process.exit(1);
}
const int = flags.includes('--int');
const testing = flags.includes('--testing');
const exportsField = {
  '.': { '@calyx/source': './src/index.ts', types: './dist/index.d.ts', import: './dist/index.js' },
};
if (testing) {
  exportsField['./testing'] = {
    '@calyx/source': './src/testing/index.ts',
    types: './dist/testing/index.d.ts',
    import: './dist/testing.js',
  };
}
const pkg = {
  name: `@calyx/${name}`,
  version: '0.1.0',
  description,
  type: 'module',
  license: 'Apache-2.0',
  exports: exportsField,
  files: ['dist', 'README.md'],
  scripts: {
    build: 'tsup --config ../../tools/config/tsup.config.mjs && tsc -p tsconfig.build.json',
    typecheck: 'tsc -p tsconfig.json --noEmit',
    lint: 'eslint src',
    test: 'vitest run --project unit',
    ...(int ? { 'test-int': 'vitest run --project int' } : {}),
  },
  dependencies: {},
};
mkdirSync(join(dir, 'src'), { recursive: true });
writeFileSync(join(dir, 'package.json'), JSON.stringify(pkg, null, 2) + '\n');
writeFileSync(
  join(dir, 'tsconfig.json'),
  JSON.stringify(
    { extends: '../../tsconfig.base.json', compilerOptions: { noEmit: true }, include: ['src'] },
    null,
    2,
  ) + '\n',
);
writeFileSync(
  join(dir, 'tsconfig.build.json'),
  JSON.stringify(
    {
      extends: '../../tsconfig.base.json',
      compilerOptions: {
        customConditions: [],
        rootDir: 'src',
        outDir: 'dist',
        emitDeclarationOnly: true,
        noEmit: false,
      },
      include: ['src'],
      exclude: ['src/**/*.test.ts', 'src/**/*.bench.ts'],
    },
    null,
    2,
  ) + '\n',
);
writeFileSync(
  join(dir, 'vitest.config.ts'),
  "import { calyxVitestConfig } from '../../tools/config/vitest.config.mjs';\n\nexport default calyxVitestConfig();\n",
);
writeFileSync(join(dir, 'README.md'), `# @calyx/${name}\n\n${description}\n`);
writeFileSync(join(dir, 'src', 'index.ts'), 'export {};\n');
console.log(`created packages/${name}`);

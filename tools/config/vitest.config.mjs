// Shared vitest config. Two projects per package: `unit` (*.test.ts, no root, no services)
// and `int` (*.int.test.ts, real kernel / daemons / datastores). Packages resolve each
// other's TypeScript sources through the "@calyx/source" export condition, so tests never
// need a build.
import { defineConfig } from 'vitest/config';

const conditions = ['@calyx/source', 'node', 'import', 'module', 'default'];

export function calyxVitestConfig(overrides = {}) {
  return defineConfig({
    resolve: { conditions },
    ssr: { resolve: { conditions, externalConditions: ['@calyx/source'] } },
    test: {
      projects: [
        {
          extends: true,
          test: {
            name: 'unit',
            include: ['src/**/*.test.ts'],
            exclude: ['src/**/*.int.test.ts', 'node_modules/**', 'dist/**'],
            testTimeout: 20_000,
          },
        },
        {
          extends: true,
          test: {
            name: 'int',
            include: ['src/**/*.int.test.ts'],
            testTimeout: 120_000,
            hookTimeout: 120_000,
            // One file at a time: integration files build namespaces and start daemons.
            fileParallelism: false,
          },
        },
      ],
      ...overrides,
    },
  });
}

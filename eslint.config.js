// Flat config. Type-aware rules (floating promises, misused promises) matter in daemons that
// are mostly async I/O; package boundaries come from tools/eslint-plugin-calyx.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import calyx from '@calyx/eslint-plugin';

export default tseslint.config(
  {
    ignores: [
      '**/dist/**',
      '**/node_modules/**',
      '**/.nx/**',
      'docs/**',
      '**/*.config.mjs',
      '**/vitest.config.ts',
      '**/tsup.config.ts',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['packages/*/src/**/*.ts'],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    plugins: { calyx },
    rules: {
      'calyx/package-boundaries': 'error',
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': [
        'error',
        { checksVoidReturn: { arguments: false } },
      ],
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_' },
      ],
      '@typescript-eslint/no-explicit-any': 'error',
      'no-restricted-syntax': [
        'error',
        {
          selector: "MemberExpression[object.name='process'][property.name='exit']",
          message: 'Libraries never call process.exit (applications do, in their bin entry only).',
        },
      ],
    },
  },
  {
    files: ['packages/*/src/**/*.test.ts', 'packages/*/src/testing/**/*.ts'],
    rules: {
      '@typescript-eslint/no-non-null-assertion': 'off',
    },
  },
  {
    files: ['packages/*/src/bin/**/*.ts', 'packages/demo/src/**/*.ts', 'tools/bench/src/**/*.ts'],
    rules: { 'no-restricted-syntax': 'off' },
  },
  {
    files: ['tools/**/*.{js,mjs}'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly' } },
  },
);

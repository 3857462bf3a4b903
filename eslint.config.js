// ESLint (flat config) with typescript-eslint's type-aware rules; formatting is Prettier's job.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', 'dashboards/generated/**', 'test-results/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    linterOptions: {
      // An `eslint-disable` comment must name a rule that would otherwise report there.
      reportUnusedDisableDirectives: 'error',
    },
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // Unused names are errors, except deliberate placeholders such as `_client`.
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      // A promise nobody waits for must be marked with `void` or handled.
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      // Rejecting with a caught error or an abort reason passes it on unchanged, as `throw err` does;
      // the rule is kept for rejections with strings and plain objects.
      '@typescript-eslint/prefer-promise-reject-errors': ['error', { allowThrowingAny: true, allowThrowingUnknown: true }],
      // Off: an `async` method without `await` is how a synchronous implementation of a
      // Promise-returning interface (a queue, a sink, a channel, a test double) turns its throws into
      // rejections; rewriting each as Promise.resolve/Promise.reject by hand would be noisier and
      // easier to get wrong. Floating and misused promises stay errors.
      '@typescript-eslint/require-await': 'off',
    },
  },
  {
    // Tests and their support read parsed JSON and HTTP bodies as `any` on purpose and assert on them.
    files: ['**/*.test.ts', 'test/**', 'bench/support/**'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
    },
  },
  {
    files: ['**/*.js', '**/*.mjs', '**/*.cjs'],
    ...tseslint.configs.disableTypeChecked,
  },
  {
    // Build scripts run on Node.
    files: ['**/*.js', '**/*.mjs', '**/*.cjs'],
    languageOptions: { globals: { console: 'readonly', process: 'readonly' } },
  },
);

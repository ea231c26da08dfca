// Lint: typescript-eslint's recommended rules on all TypeScript sources, and the module boundary:
// a module imports from Cadence only through core/api.ts, never another module's file
// (spec/unit/module-boundary.spec.ts shows both refused on spec/fixtures/lint/mod_bad_imports.ts).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/** Import patterns refused in module files (type-only imports included). */
const anotherModule = {
  regex: '(^|/)mod_[a-z0-9_]+(\\.[jt]s|/.*)?$',
  message: 'A module never imports another module: share through the event catalogue (core/event-types.ts, or declaration merging) or module.call().',
};
const privateCore = {
  regex: '^(\\.\\./)+core/(?!api\\.ts$)',
  message: 'A module imports from Cadence only through core/api.ts (the public module API).',
};
const outside = (prefix) => ({
  regex: `^(?!(\\.\\./)+core/)(?!.*(^|/)mod_[a-z0-9_]+)${prefix}`,
  message: 'A module imports only core/api.ts and, in a module folder (modules/mod_<name>/), its own files.',
});

export default tseslint.config(
  { ignores: ['node_modules/**', 'dist/**', 'data/**', 'bench/results/**', 'spec/fixtures/lint/**', 'spec/fixtures/types/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    // Single-file modules (and module files outside modules/): no relative import but core/api.ts.
    files: ['modules/*.ts', 'modules/*.js', 'doc/examples/**/*.ts', 'spec/fixtures/modules/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: [anotherModule, privateCore, outside('\\.\\.?/')] }] },
  },
  {
    // Module folders (modules/mod_<name>/…): also their own files (./…).
    files: ['modules/*/**/*.ts', 'modules/*/**/*.js'],
    rules: { 'no-restricted-imports': ['error', { patterns: [anotherModule, privateCore, outside('\\.\\./')] }] },
  },
  {
    files: ['bin/**/*.js', 'eslint.config.js'],
    languageOptions: { globals: { process: 'readonly' } },
  },
);

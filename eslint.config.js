// One tool lints and checks formatting: typescript-eslint (type-aware, for async safety such as
// no-floating-promises) plus @stylistic for layout. `npm run fix` applies what can be fixed.
import js from '@eslint/js'
import stylistic from '@stylistic/eslint-plugin'
import { defineConfig } from 'eslint/config'
import tseslint from 'typescript-eslint'
import berth from './eslint/layering.ts'

export default defineConfig(
  { ignores: ['node_modules/', '.cache/', 'test/ground/go/', 'dist/'] },
  js.configs.recommended,
  tseslint.configs.strictTypeChecked,
  stylistic.configs.customize({ indent: 2, quotes: 'single', semi: false, braceStyle: '1tbs', arrowParens: true }),
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // tsc reports undefined names, with Node's types; the core rule knows neither.
      'no-undef': 'off',
      '@typescript-eslint/no-floating-promises': 'error',
      // `() => doSomething()` callbacks read better than braces; promises are covered by the rules around.
      '@typescript-eslint/no-confusing-void-expression': 'off',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true }],
      '@stylistic/max-len': [
        'error',
        {
          code: 120,
          ignoreStrings: true,
          ignoreTemplateLiterals: true,
          ignoreRegExpLiterals: true,
          ignoreComments: false,
        },
      ],
      '@stylistic/operator-linebreak': ['error', 'before'],
      '@stylistic/member-delimiter-style': [
        'error',
        { multiline: { delimiter: 'none' }, singleline: { delimiter: 'semi', requireLast: false } },
      ],
    },
  },
  {
    // The architecture: which folder may import which, and no import cycles (eslint/layering.js).
    // Tests beside the code may cross layers: pack.test.ts reads back with the reconciler's reader.
    plugins: { berth },
    rules: { 'berth/layering': 'error', 'berth/no-cycle': 'error' },
  },
  { files: ['**/*.test.ts'], rules: { 'berth/layering': 'off' } },

  {
    // Asymmetric matchers (expect.stringContaining …) are typed `any` by design.
    files: ['**/*.test.ts'],
    rules: { '@typescript-eslint/no-unsafe-assignment': 'off' },
  },
)

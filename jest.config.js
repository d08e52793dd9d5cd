const { availableParallelism } = require('node:os');

/**
 * Two projects, run side by side by test/support/lanes-runner.js:
 * - process: fleets of real processes and the benchmark smoke run. They load every core and measure time, so
 *   they run one at a time, on a worker of their own (`npx jest --selectProjects process`);
 * - unit: everything else (unit, e2e over sockets, Redis, soak...), mostly waiting on timers, sockets and child
 *   processes, on the other workers meanwhile.
 * Jest's default on 2 cores is 1 worker (cores - 1): every file one after the other. At least 2 here.
 * A single file (`npx jest test/unit/options.spec.ts`) runs in band, as ever, whichever project it is in.
 */
const PROCESS_TESTS = ['test/fleet/', 'test/reliability/bench-smoke.spec.ts']; // folders end with a slash
const escape = (path) => path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

const project = {
  rootDir: '.',
  testEnvironment: 'node',
  roots: ['<rootDir>/lib', '<rootDir>/test'],
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: '<rootDir>/tsconfig.json' }] },
  moduleNameMapper: {
    '^nestjs-freedompay-transfer-auth$': '<rootDir>/lib/index.ts',
    '^nestjs-freedompay-transfer-auth/testing$': '<rootDir>/lib/testing/index.ts',
    '^nestjs-freedompay-transfer-auth/health$': '<rootDir>/lib/health/index.ts',
    '^nestjs-freedompay-transfer-auth/redis$': '<rootDir>/lib/redis/index.ts',
    // The README's recipes import `./app.module.js`, as a Nest 12 ES-module app must: the .ts beside it.
    '^(\\.{1,2}/.*)\\.js$': '$1',
  },
  runner: ['<rootDir>/test/support/lanes-runner.js', { serialProject: 'process' }],
};

/** @type {import('jest').Config} */
module.exports = {
  projects: [
    {
      ...project,
      displayName: 'process',
      testMatch: PROCESS_TESTS.map((path) => `<rootDir>/${path}${path.endsWith('/') ? '**/*.spec.ts' : ''}`),
    },
    {
      ...project,
      displayName: 'unit',
      testMatch: ['**/*.spec.ts'],
      testPathIgnorePatterns: ['/node_modules/', ...PROCESS_TESTS.map((path) => `^<rootDir>/${escape(path)}`)],
    },
  ],
  maxWorkers: Math.max(2, availableParallelism() - 1),
  collectCoverageFrom: ['lib/**/*.ts', '!lib/**/index.ts'],
  coverageReporters: ['text-summary', 'text'],
  testTimeout: 20000,
};

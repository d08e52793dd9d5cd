/** @type {import('jest').Config} */
module.exports = {
  rootDir: '.',
  testEnvironment: 'node',
  roots: ['<rootDir>/lib', '<rootDir>/test'],
  testMatch: ['**/*.spec.ts'],
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: '<rootDir>/tsconfig.json' }] },
  moduleNameMapper: {
    '^nestjs-freedompay-transfer-auth$': '<rootDir>/lib/index.ts',
    '^nestjs-freedompay-transfer-auth/testing$': '<rootDir>/lib/testing/index.ts',
    '^nestjs-freedompay-transfer-auth/health$': '<rootDir>/lib/health/index.ts',
    '^nestjs-freedompay-transfer-auth/redis$': '<rootDir>/lib/redis/index.ts',
  },
  collectCoverageFrom: ['lib/**/*.ts', '!lib/**/index.ts'],
  coverageReporters: ['text-summary', 'text'],
  testTimeout: 20000,
};

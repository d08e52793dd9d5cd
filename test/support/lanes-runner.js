/* A Jest runner with two lanes, for `npm test` on a small machine (see jest.config.js).
 *
 * The tests of one project (runnerOptions.serialProject, 'process' by default: fleets of child processes and
 * the benchmark smoke run, which load every core and measure time) run one at a time, on a worker of their
 * own; every other test runs meanwhile on the other workers (maxWorkers - 1). Most of those wait on sockets,
 * timers and child processes rather than compute, so the two lanes overlap well on 2 cores, and no two of the
 * heavy files ever run at once (nor do they wait behind the light ones).
 *
 * With one worker (--runInBand, -w 1, or a single test file) Jest runs everything in band as it always does;
 * when only one kind of test is selected it gets all the workers it may have (the heavy kind: one).
 * Results, reporters, --json and the summary are Jest's own: each lane is Jest's default runner.
 */
/* global require, module */
/* eslint-disable @typescript-eslint/no-require-imports */
'use strict';

const TestRunner = require('jest-runner').default;

class LanesRunner {
  supportsEventEmitters = true;

  constructor(globalConfig, context, options = {}) {
    this.globalConfig = globalConfig;
    this.context = context;
    this.serialProject = options.serialProject ?? 'process';
    /** Jest subscribes before runTests; each lane created later gets every subscription. */
    this.subscriptions = new Set();
  }

  on(eventName, listener) {
    const subscription = { eventName, listener, off: [] };
    this.subscriptions.add(subscription);
    return () => {
      this.subscriptions.delete(subscription);
      for (const off of subscription.off) off();
    };
  }

  /** Jest's default runner, with its own pool of `maxWorkers` workers. */
  lane(maxWorkers) {
    const runner = new TestRunner({ ...this.globalConfig, maxWorkers }, this.context);
    for (const s of this.subscriptions) s.off.push(runner.on(s.eventName, s.listener));
    return runner;
  }

  async runTests(tests, watcher, options) {
    const heavy = tests.filter((test) => test.context.config.displayName?.name === this.serialProject);
    const light = tests.filter((test) => !heavy.includes(test));
    const workers = this.globalConfig.maxWorkers;
    if (options.serial || workers < 2) return this.lane(workers).runTests(tests, watcher, options);
    if (light.length === 0) return this.lane(1).runTests(heavy, watcher, options);
    if (heavy.length === 0) return this.lane(workers).runTests(light, watcher, options);
    await Promise.all([
      this.lane(1).runTests(heavy, watcher, options),
      this.lane(workers - 1).runTests(light, watcher, options),
    ]);
  }
}

module.exports = LanesRunner;

/* One process of a test fleet (see fleet.ts): a real Nest application context using the built package,
 * with C callers that ask for the token in a loop. Plain CommonJS, so that it runs without a compile step.
 * Configuration: one JSON argument. Talks to the parent over the IPC channel only:
 *   parent -> child: 'stop' | 'current' | 'invalidate'
 *   child -> parent: ready | upstream (one per request to the fake) | current | invalidated | report | fatal
 */
/* global require, process, setTimeout, performance, URL, Buffer */
/* eslint-disable @typescript-eslint/no-require-imports */
'use strict';

const path = require('node:path');
const diagnostics = require('node:diagnostics_channel');

const config = JSON.parse(process.argv[2]);
const upstreamHost = new URL(config.baseUrl).host;

/** Every request this process sends to the fake: the parent matches its local port with the fake's side. */
let upstreamRequests = 0;
diagnostics.subscribe('http.client.request.start', ({ request }) => {
  if (request.getHeader('host') !== upstreamHost) return;
  upstreamRequests++;
  const at = Date.now();
  const report = (socket) => {
    const send = () => tell({ type: 'upstream', localPort: socket.localPort, at, path: request.path });
    if (socket.localPort) send();
    else socket.once('connect', send);
  };
  if (request.socket) report(request.socket);
  else request.once('socket', report);
});

function tell(message) {
  if (process.connected) process.send(message, () => undefined);
}

/** Warnings and errors to stderr (the parent keeps them and shows them when a test fails); no 'log' noise. */
const logger = {
  log() {},
  debug() {},
  verbose() {},
  warn: (message, context) => process.stderr.write(`[w${config.id} WARN ${context ?? ''}] ${message}\n`),
  error: (message, ...rest) => process.stderr.write(`[w${config.id} ERROR] ${message} ${rest.join(' ')}\n`),
  fatal: (message, ...rest) => process.stderr.write(`[w${config.id} FATAL] ${message} ${rest.join(' ')}\n`),
};

/** The app's own Redis client, and how to close it (the store never closes it). */
async function openClient() {
  const quiet = () => undefined; // the token store logs an outage once; the client's own errors are noise
  switch (config.client) {
    case 'none':
      return undefined;
    case 'ioredis':
    case 'ioredis-v6': {
      const { Redis } = require(config.client);
      const client = new Redis(config.redisUrl);
      client.on('error', quiet);
      return { client, close: () => client.disconnect() };
    }
    case 'cluster': {
      const { Cluster } = require('ioredis');
      const client = new Cluster(config.clusterNodes);
      client.on('error', quiet);
      return { client, close: () => client.disconnect() };
    }
    case 'ioredis-sentinel': {
      const { Redis } = require('ioredis');
      // ioredis' default: it follows a failover only when the old primary drops it (~10 s after the switch).
      const client = new Redis({ sentinels: config.sentinels, name: config.sentinelName });
      client.on('error', quiet);
      return { client, close: () => client.disconnect() };
    }
    case 'node-redis':
    case 'redis-v6': {
      const { createClient } = require(config.client === 'node-redis' ? 'redis' : 'redis-v6');
      const client = createClient({ url: config.redisUrl });
      client.on('error', quiet);
      await client.connect();
      return { client, close: () => client.destroy() };
    }
    default:
      throw new Error(`unknown client ${config.client}`);
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function main() {
  require('reflect-metadata');
  const { NestFactory } = require('@nestjs/core');
  const { Module } = require('@nestjs/common');
  const { TransferAuthModule, TransferAuthService } = require(path.join(config.pkg, 'index.js'));
  const { RedisTokenStore } = require(path.join(config.pkg, 'redis', 'index.js'));

  const redis = await openClient();
  const store =
    redis &&
    new RedisTokenStore({
      client: redis.client,
      ...(config.secretProvider ? { encryptionKey: Buffer.alloc(32, 7) } : {}),
    });
  class FleetModule {}
  Module({
    imports: [
      TransferAuthModule.forRoot({
        agentId: config.agentId,
        // A provider (read before every Get token) needs the store's own encryptionKey.
        agentSecret: config.secretProvider ? () => Promise.resolve(config.agentSecret) : config.agentSecret,
        baseUrl: config.baseUrl,
        requestTimeoutMs: config.requestTimeoutMs,
        fetchOnStartup: config.fetchOnStartup !== false,
        ...(store === undefined ? {} : { store }),
      }),
    ],
  })(FleetModule);

  const booting = performance.now(); // app init (the startup fetch, or the read of a stored token) to first token
  const app = await NestFactory.createApplicationContext(FleetModule, { logger, abortOnError: false });
  const auth = app.get(TransferAuthService);

  /** Each distinct token: the first and the last wall-clock time a caller got it. */
  const tokens = new Map();
  const handedOut = (token) => {
    const now = Date.now();
    const seen = tokens.get(token);
    if (seen === undefined) tokens.set(token, [now, now]);
    else seen[1] = now;
  };
  const errors = {};
  let maxLatencyMs = 0;
  let calls = 0;
  let current;
  let running = true;

  async function caller() {
    while (running) {
      const started = performance.now();
      try {
        const token = await auth.getAccessToken();
        handedOut(token);
        current = token;
      } catch (error) {
        const code = (error && (error.code || error.name)) || 'unknown';
        errors[code] = (errors[code] || 0) + 1;
      }
      maxLatencyMs = Math.max(maxLatencyMs, performance.now() - started);
      calls++;
      await sleep(config.fixedPaceMs ?? Math.random() * config.paceMs);
    }
  }

  const started = performance.now();
  if (config.waitForToken !== false) {
    current = await auth.getAccessToken();
    handedOut(current);
  }
  const now = performance.now();
  tell({ type: 'ready', firstTokenMs: now - started, startMs: now - booting, upstream: upstreamRequests });
  const callers = Array.from({ length: config.callers }, () => caller());

  process.on('message', (message) => {
    if (message === 'current') tell({ type: 'current', token: current, at: Date.now() });
    else if (message === 'status') tell({ type: 'status', status: auth.getStatus(), at: Date.now() });
    else if (message === 'invalidate') {
      const token = current;
      auth.invalidate(token);
      tell({ type: 'invalidated', token, at: Date.now() });
    } else if (message === 'stop') {
      running = false;
      void (async () => {
        await Promise.all(callers);
        await app.close();
        redis?.close();
        const report = {
          type: 'report',
          tokens: [...tokens].map(([token, [first, last]]) => [token, first, last]),
          maxLatencyMs,
          errors,
          calls,
          upstream: upstreamRequests,
        };
        process.send(report, () => process.exit(0));
      })().catch(fail);
    }
  });
}

function fail(error) {
  process.stderr.write(`[w${config.id} FATAL] ${(error && error.stack) || String(error)}\n`);
  tell({ type: 'fatal', message: String((error && error.message) || error) });
  setTimeout(() => process.exit(1), 100);
}

// Dies with the parent: a test run that is killed leaves no process behind.
process.on('disconnect', () => process.exit(1));
process.on('uncaughtException', fail);
process.on('unhandledRejection', fail);
main().catch(fail);

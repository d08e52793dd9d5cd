import { Controller, Get, Injectable, Module, type INestApplicationContext } from '@nestjs/common';
import { HealthCheck, HealthCheckService, TerminusModule } from '@nestjs/terminus';
import { Test } from '@nestjs/testing';
import axios, { AxiosError } from 'axios';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { inspect } from 'node:util';
import { firstValueFrom } from 'rxjs';
import {
  AGENTS_PATH,
  attachTransferAuth,
  InjectTransferAuth,
  InjectTransferHttp,
  TransferAuthModule,
  TransferAuthService,
  TransferHttpService,
} from 'nestjs-freedompay-transfer-auth';
import { TransferAuthHealthIndicator } from 'nestjs-freedompay-transfer-auth/health';
import { FakeTransferServer } from 'nestjs-freedompay-transfer-auth/testing';
import { installCapturingLogger, type CapturingLogger, fakeOptions } from '../support/auth-app';

/** A loopback server that is NOT the configured upstream: it records what reaches it. */
async function startForeignServer(): Promise<{ url: string; hits: IncomingHttpHeaders[]; server: Server }> {
  const hits: IncomingHttpHeaders[] = [];
  const server = createServer((req, res) => {
    hits.push(req.headers);
    res.writeHead(200, { 'Content-Type': 'application/json' }).end('{"foreign":true}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, hits, server };
}

describe('authenticated Transfer API client', () => {
  let fake: FakeTransferServer;
  let app: INestApplicationContext | undefined;

  beforeEach(async () => {
    fake = await new FakeTransferServer().start();
  });
  afterEach(async () => {
    await app?.close();
    app = undefined;
    await fake.stop();
  });

  async function boot(): Promise<{ http: TransferHttpService; auth: TransferAuthService }> {
    const moduleRef = await Test.createTestingModule({
      imports: [TransferAuthModule.forRoot(fakeOptions(fake))],
    }).compile();
    app = await moduleRef.init();
    return { http: app.get(TransferHttpService), auth: app.get(TransferAuthService) };
  }

  const agentRequests = (): IncomingHttpHeaders[] =>
    fake.requests.filter((r) => r.endpoint === 'agents').map((r) => r.headers as IncomingHttpHeaders);

  it('sends the cached token as a Bearer header to the configured base URL, with no extra auth call', async () => {
    const { http, auth } = await boot();
    const response = await firstValueFrom(http.get(AGENTS_PATH));
    expect(response.status).toBe(200);
    expect(response.data).toEqual({ data: [expect.objectContaining({ agent_id: fake.agentId })] });
    const token = await auth.getAccessToken();
    expect(agentRequests()[0]?.authorization).toBe(`Bearer ${token}`);
    expect(fake.calls.auth).toBe(1);
  });

  it('on a 401 invalidates the token, renews it and retries the request once', async () => {
    const { http, auth } = await boot();
    const before = await auth.getAccessToken();
    fake.revokeAccessTokens();
    const response = await firstValueFrom(http.get(AGENTS_PATH));
    expect(response.status).toBe(200);
    expect(fake.calls.agents).toBe(2);
    expect(fake.calls.refresh).toBe(1);
    const after = await auth.getAccessToken();
    expect(after).not.toBe(before);
    expect(agentRequests()[1]?.authorization).toBe(`Bearer ${after}`);
  });

  it('surfaces a second 401 as is, without a third request, and without the token in the error', async () => {
    const { http, auth } = await boot();
    fake.failAlways('agents', { kind: 'status', status: 401 });
    const error = await firstValueFrom(http.get(AGENTS_PATH)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AxiosError);
    expect((error as AxiosError).response?.status).toBe(401);
    expect(fake.calls.agents).toBe(2);
    const printed = inspect(error, { depth: 6 }) + JSON.stringify(error);
    for (const token of [...fake.issuedTokens(), await auth.getAccessToken()]) expect(printed).not.toContain(token);
    expect(printed).not.toContain(fake.agentSecret);
  });

  it('a burst of 100 requests at a revoked token causes one renewal, and all succeed', async () => {
    const { http } = await boot();
    fake.revokeAccessTokens();
    const calls = { auth: fake.calls.auth, refresh: fake.calls.refresh };
    const responses = await Promise.all(Array.from({ length: 100 }, () => firstValueFrom(http.get(AGENTS_PATH))));
    expect(responses.every((r) => r.status === 200)).toBe(true);
    expect(fake.calls.auth - calls.auth + (fake.calls.refresh - calls.refresh)).toBe(1);
    expect(fake.calls.agents).toBe(200);
  });

  it('never sends the token to another host, and never follows a redirect with it', async () => {
    const foreign = await startForeignServer();
    try {
      const { http } = await boot();
      const response = await firstValueFrom(http.get(`${foreign.url}/anything`));
      expect(response.data).toEqual({ foreign: true });
      expect(foreign.hits[0]?.authorization).toBeUndefined();

      fake.failNext('agents', { kind: 'redirect', location: `${foreign.url}/stolen`, status: 307 });
      const error = await firstValueFrom(http.get(AGENTS_PATH)).catch((e: unknown) => e);
      expect((error as AxiosError).response?.status).toBe(307);
      expect(foreign.hits).toHaveLength(1);
    } finally {
      await new Promise((resolve) => foreign.server.close(resolve));
    }
  });

  it('attachTransferAuth equips a caller-owned axios instance the same way', async () => {
    const { auth } = await boot();
    const instance = axios.create();
    const detach = attachTransferAuth(instance, auth);
    const response = await instance.get(AGENTS_PATH);
    expect(response.status).toBe(200);
    expect(agentRequests()[0]?.authorization).toBe(`Bearer ${await auth.getAccessToken()}`);
    detach();
    const error = await instance.get(`${fake.url}${AGENTS_PATH}`).catch((e: unknown) => e);
    expect((error as AxiosError).response?.status).toBe(401);
  });
});

describe('several agents in one app', () => {
  let kz: FakeTransferServer;
  let uz: FakeTransferServer;
  let app: INestApplicationContext | undefined;

  @Injectable()
  class Payouts {
    constructor(
      @InjectTransferAuth('kz') readonly kzAuth: TransferAuthService,
      @InjectTransferAuth('uz') readonly uzAuth: TransferAuthService,
      @InjectTransferHttp('kz') readonly kzHttp: TransferHttpService,
      @InjectTransferHttp('uz') readonly uzHttp: TransferHttpService,
      readonly defaultAuth: TransferAuthService,
    ) {}
  }

  beforeEach(async () => {
    kz = await new FakeTransferServer({ agentId: 'agent-kz' }).start();
    uz = await new FakeTransferServer({ agentId: 'agent-uz' }).start();
  });
  afterEach(async () => {
    await app?.close();
    app = undefined;
    await Promise.all([kz.stop(), uz.stop()]);
  });

  it('keeps named registrations apart: own service, client, tokens and failures', async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [
        TransferAuthModule.forRoot({ ...fakeOptions(kz), name: 'kz' }),
        TransferAuthModule.forRootAsync({ name: 'uz', useFactory: () => fakeOptions(uz) }),
        TransferAuthModule.forRoot(fakeOptions(kz)),
      ],
      providers: [Payouts],
    }).compile();
    app = await moduleRef.init();
    const payouts = app.get(Payouts);
    expect(payouts.kzAuth).not.toBe(payouts.uzAuth);
    expect(payouts.defaultAuth).not.toBe(payouts.kzAuth);

    const [kzToken, uzToken] = await Promise.all([payouts.kzAuth.getAccessToken(), payouts.uzAuth.getAccessToken()]);
    expect(kz.isAccessTokenValid(kzToken)).toBe(true);
    expect(uz.isAccessTokenValid(uzToken)).toBe(true);
    expect(uz.isAccessTokenValid(kzToken)).toBe(false);

    const [kzAgents, uzAgents] = await Promise.all([
      firstValueFrom(payouts.kzHttp.get(AGENTS_PATH)),
      firstValueFrom(payouts.uzHttp.get(AGENTS_PATH)),
    ]);
    expect(kzAgents.data).toEqual({ data: [expect.objectContaining({ agent_id: 'agent-kz' })] });
    expect(uzAgents.data).toEqual({ data: [expect.objectContaining({ agent_id: 'agent-uz' })] });

    // A failure of one agent's upstream is that agent's alone.
    uz.failAlways('any', { kind: 'status', status: 503 });
    payouts.uzAuth.invalidate();
    await expect(payouts.uzAuth.getAccessToken()).rejects.toMatchObject({ code: 'UPSTREAM_UNAVAILABLE' });
    await expect(payouts.kzAuth.getAccessToken()).resolves.toBe(kzToken);
    expect(payouts.kzAuth.getStatus().state).toBe('valid');
    expect(payouts.uzAuth.getStatus().lastError?.code).toBe('UPSTREAM_UNAVAILABLE');
  });
});

describe('terminus health indicator', () => {
  let fake: FakeTransferServer;
  let app: INestApplicationContext | undefined;
  /** Nest's logs, terminus' "Health Check has failed!" included: asserted on, not printed. */
  let logger: CapturingLogger;

  @Controller('health')
  class HealthController {
    constructor(
      private readonly health: HealthCheckService,
      private readonly transferAuth: TransferAuthHealthIndicator,
    ) {}
    @Get()
    @HealthCheck()
    check() {
      return this.health.check([() => this.transferAuth.isHealthy('freedompay', { timeoutMs: 1_000 })]);
    }
  }

  @Module({ imports: [TerminusModule], controllers: [HealthController], providers: [TransferAuthHealthIndicator] })
  class HealthModule {}

  beforeEach(async () => {
    logger = installCapturingLogger();
    fake = await new FakeTransferServer().start();
  });
  afterEach(async () => {
    await app?.close();
    app = undefined;
    await fake.stop();
  });

  async function boot(fetchOnStartup: boolean): Promise<HealthController> {
    const moduleRef = await Test.createTestingModule({
      imports: [TransferAuthModule.forRoot(fakeOptions(fake, { fetchOnStartup })), HealthModule],
    })
      .setLogger(logger)
      .compile();
    app = await moduleRef.init();
    return app.get(HealthController);
  }

  it('is up with the token state and expiry, and shows no token', async () => {
    const controller = await boot(true);
    const result = await controller.check();
    expect(result.status).toBe('ok');
    expect(result.info?.freedompay).toEqual({ status: 'up', state: 'valid', accessExpiresAt: expect.any(String) });
    const printed = JSON.stringify(result);
    for (const token of fake.issuedTokens()) expect(printed).not.toContain(token);
  });

  it('is down with the error code when no token can be had', async () => {
    fake.failAlways('any', { kind: 'status', status: 503 });
    const controller = await boot(false);
    const failure: unknown = await controller.check().catch((e: unknown) => e);
    expect((failure as { response?: unknown }).response).toMatchObject({
      status: 'error',
      error: { freedompay: { status: 'down', state: 'failed', code: 'UPSTREAM_UNAVAILABLE', accessExpiresAt: null } },
    });
    const failed = logger.lines.filter((line) => line.includes('Health Check has failed!'));
    expect(failed).toEqual([expect.stringMatching(/^error .*"code":"UPSTREAM_UNAVAILABLE"/)]);
  });
});

import { Test, type TestingModule } from '@nestjs/testing';
import { join } from 'node:path';
import ts from 'typescript';
import { TransferAuthService } from 'nestjs-freedompay-transfer-auth';
import { FakeTransferServer } from 'nestjs-freedompay-transfer-auth/testing';
import { AgentsService } from './agents.service';
import { AppModule } from './app.module';
import { HealthController, HealthModule } from './health.controller';
import { recipeFiles } from './recipe-files';

/**
 * The README's recipes are the files of this folder that start with `// <their own name>`; the README
 * shows them verbatim (test/docs/docs.spec.ts). Here they are compiled as a user's app would compile them,
 * under `strict` and `exactOptionalPropertyTypes`, and the ones that talk to the upstream are run against
 * a FakeTransferServer. payments.module.spec.ts, the testing recipe, runs as a spec of its own.
 */
const HERE = __dirname;
const ROOT = join(HERE, '..', '..');

describe('the recipes compile under strict and exactOptionalPropertyTypes', () => {
  const CANARY = join(HERE, '__exact-optional-canary__.ts');

  function compile(extra: Record<string, string> = {}): { program: ts.Program; errors: (file: string) => string[] } {
    const parsed = ts.getParsedCommandLineOfConfigFile(join(ROOT, 'tsconfig.json'), undefined, {
      ...ts.sys,
      onUnRecoverableConfigFileDiagnostic: (diagnostic) => {
        throw new Error(ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n'));
      },
    });
    if (parsed === undefined) throw new Error('tsconfig.json could not be read');
    const options: ts.CompilerOptions = {
      ...parsed.options,
      strict: true,
      exactOptionalPropertyTypes: true,
      noEmit: true,
    };
    const host = ts.createCompilerHost(options);
    const getSourceFile = host.getSourceFile.bind(host);
    host.getSourceFile = (fileName, language, ...rest) =>
      extra[fileName] !== undefined
        ? ts.createSourceFile(fileName, extra[fileName], language)
        : getSourceFile(fileName, language, ...rest);
    const roots = [...recipeFiles().map((name) => join(HERE, name)), ...Object.keys(extra)];
    const program = ts.createProgram(roots, options, host);
    // Only the recipes' own diagnostics: the package's sources are checked by its own tsconfig, and a user
    // compiles against its declarations, not its sources.
    const errors = (file: string): string[] => {
      const source = program.getSourceFile(file);
      if (source === undefined) return [`${file} is not in the program`];
      return [...program.getSyntacticDiagnostics(source), ...program.getSemanticDiagnostics(source)].map(
        (d) => `${file.slice(ROOT.length + 1)}: TS${d.code} ${ts.flattenDiagnosticMessageText(d.messageText, ' ')}`,
      );
    };
    return { program, errors };
  }

  it('every recipe compiles', () => {
    const { program, errors } = compile({
      // The flag bites: a property given `undefined` where the type says `?: string` is an error.
      [CANARY]: 'export const canary: { a?: string } = { a: undefined as string | undefined };\n',
    });
    expect(program.getCompilerOptions()).toMatchObject({ strict: true, exactOptionalPropertyTypes: true });
    expect(recipeFiles()).toEqual(
      expect.arrayContaining(['app.module.ts', 'freedompay.config.ts', 'payments.module.spec.ts']),
    );
    expect(errors(CANARY)).toEqual([expect.stringContaining('TS2375')]);
    expect(recipeFiles().flatMap((name) => errors(join(HERE, name)))).toEqual([]);
  }, 60_000);
});

describe('the ConfigModule recipe (app.module.ts, freedompay.config.ts)', () => {
  const saved = { ...process.env };
  let fake: FakeTransferServer;
  let moduleRef: TestingModule | undefined;

  beforeEach(async () => {
    fake = await new FakeTransferServer().start();
    process.env.FREEDOMPAY_AGENT_ID = fake.agentId;
    process.env.FREEDOMPAY_AGENT_SECRET = fake.agentSecret;
    process.env.FREEDOMPAY_BASE_URL = fake.url;
  });
  afterEach(async () => {
    await moduleRef?.close();
    moduleRef = undefined;
    await fake.stop();
    process.env = { ...saved };
  });

  async function boot(): Promise<TestingModule> {
    const ref = await Test.createTestingModule({ imports: [AppModule, HealthModule], providers: [AgentsService] })
      .setLogger({ log() {}, warn() {}, error() {} })
      .compile();
    try {
      await ref.init();
    } catch (error) {
      await ref.close().catch(() => undefined); // Nest's close() rethrows the failed init's error
      throw error;
    }
    moduleRef = ref;
    return ref;
  }

  it('reads the credentials from the environment; the client and the health check use them', async () => {
    const ref = await boot();
    const auth = ref.get(TransferAuthService);
    expect(auth.getBaseUrl()).toBe(fake.url);
    expect(fake.isAccessTokenValid(await auth.getAccessToken())).toBe(true);
    expect(await ref.get(AgentsService).list()).toMatchObject({ data: [{ agent_id: fake.agentId }] });
    expect(await ref.get(HealthController).check()).toMatchObject({
      status: 'ok',
      info: { freedompay: { status: 'up' } },
    });
    expect(fake.calls).toMatchObject({ auth: 1, agents: 1 });
  });

  it('rejects an empty variable at startup as INVALID_CONFIG naming the option', async () => {
    process.env.FREEDOMPAY_AGENT_SECRET = '';
    await expect(boot()).rejects.toMatchObject({
      code: 'INVALID_CONFIG',
      message: expect.stringContaining('`agentSecret`'),
    });
    expect(fake.calls.total).toBe(0);
  });
});

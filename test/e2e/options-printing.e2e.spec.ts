import { Test } from '@nestjs/testing';
import { inspect } from 'node:util';
import { TRANSFER_AUTH_MODULE_OPTIONS, TransferAuthModule } from 'nestjs-freedompay-transfer-auth';

describe('the options in the container print without the secret or the client defaults', () => {
  it('agentSecret and httpDefaults (an API-key header) show as [redacted]; the client still gets them', async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [
        TransferAuthModule.forRoot({
          agentId: 'agent-9',
          agentSecret: 'secret-9f2',
          fetchOnStartup: false,
          httpDefaults: { headers: { 'X-Api-Key': 'key-77aa' } },
        }),
      ],
    }).compile();
    try {
      const options: unknown = moduleRef.get(TRANSFER_AUTH_MODULE_OPTIONS);
      for (const text of [JSON.stringify(options), inspect(options, { showHidden: false, depth: 10 })]) {
        expect(text).not.toContain('secret-9f2');
        expect(text).not.toContain('key-77aa');
        expect(text).toContain('agent-9');
      }
      expect((options as { httpDefaults: { headers: Record<string, string> } }).httpDefaults.headers['X-Api-Key']).toBe(
        'key-77aa',
      );
    } finally {
      await moduleRef.close();
    }
  });
});

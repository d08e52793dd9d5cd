// payments.module.ts
import { Injectable, Module } from '@nestjs/common';
import { TransferAuthModule, TransferAuthService } from 'nestjs-freedompay-transfer-auth';

@Injectable()
export class PaymentsService {
  constructor(private readonly auth: TransferAuthService) {}

  async transferHeaders(): Promise<{ Authorization: string }> {
    return { Authorization: await this.auth.getAuthorizationHeader() }; // "Bearer <access_token>"
  }
}

@Module({
  imports: [TransferAuthModule.forRoot({ agentId: 'your-agent-id', agentSecret: 'your-agent-secret' })],
  providers: [PaymentsService],
  exports: [PaymentsService],
})
export class PaymentsModule {}

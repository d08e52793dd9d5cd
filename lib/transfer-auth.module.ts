import { Module } from '@nestjs/common';
import { ConfigurableTransferAuthModule } from './transfer-auth.module-definition';
import { TransferAuthService } from './transfer-auth.service';

/**
 * Freedom Pay Transfer (IMTS) agent tokens for Nest: `TransferAuthModule.forRoot({ agentId, agentSecret })`
 * or `forRootAsync({ imports, inject, useFactory })`, then inject {@link TransferAuthService}.
 */
@Module({
  providers: [TransferAuthService],
  exports: [TransferAuthService],
})
export class TransferAuthModule extends ConfigurableTransferAuthModule {}

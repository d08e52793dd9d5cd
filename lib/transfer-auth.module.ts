import { Module } from '@nestjs/common';
import { ConfigurableTransferAuthModule } from './transfer-auth.module-definition';

/**
 * Freedom Pay Transfer (IMTS) agent tokens for Nest: `TransferAuthModule.forRoot({ agentId, agentSecret })`
 * or `forRootAsync({ imports, inject, useFactory })`, then inject `TransferAuthService` (the token
 * provider) or `TransferHttpService` (an authenticated client for the Transfer API). Each registration
 * (`name` for several agents) has its own providers, made in module-definition.
 */
@Module({})
export class TransferAuthModule extends ConfigurableTransferAuthModule {}

// payouts.module.ts
import { Injectable, Module } from '@nestjs/common';
import {
  InjectTransferAuth,
  InjectTransferHttp,
  TransferAuthModule,
  TransferAuthService,
  TransferHttpService,
} from 'nestjs-freedompay-transfer-auth';

@Injectable()
export class PayoutsService {
  constructor(
    @InjectTransferAuth('kz') readonly kz: TransferAuthService,
    @InjectTransferHttp('uz') readonly uzApi: TransferHttpService,
  ) {}
}

@Module({
  imports: [
    TransferAuthModule.forRoot({ name: 'kz', agentId: 'kz-agent', agentSecret: process.env.KZ_SECRET ?? '' }),
    TransferAuthModule.forRoot({ name: 'uz', agentId: 'uz-agent', agentSecret: process.env.UZ_SECRET ?? '' }),
  ],
  providers: [PayoutsService],
})
export class PayoutsModule {}

import { Controller, Get } from '@nestjs/common';
import { TransferAuthService, type TransferAuthStatus } from 'nestjs-freedompay-transfer-auth';

@Controller('auth')
export class AuthStatusController {
  constructor(private readonly auth: TransferAuthService) {}

  /** State of the Freedom Pay token (`valid`, `stale`, `failed`, ...) and its expiry times. Never a token. */
  @Get('status')
  getStatus(): TransferAuthStatus {
    return this.auth.getStatus();
  }
}

import { Controller, Get, Inject } from '@nestjs/common';
import { TransferAuthService, type TransferAuthStatus } from 'nestjs-freedompay-transfer-auth';
import { STORE_KIND } from './token-store';

/** `/auth/status`: the token's state, where it is kept, and which token (by fingerprint) this process serves. */
export interface AuthStatusView extends TransferAuthStatus {
  /** `redis` (shared by every process using that Redis) or `in-process`; `store` says how the store is doing. */
  storeKind: string;
  /** The process that answered (with `npm run start:fleet`, one of several workers). */
  pid: number;
}

@Controller('auth')
export class AuthStatusController {
  constructor(
    private readonly auth: TransferAuthService,
    @Inject(STORE_KIND) private readonly store: string,
  ) {}

  /** State of the Freedom Pay token (`valid`, `stale`, `failed`, ...), its expiry times and fingerprint. Never a token. */
  @Get('status')
  getStatus(): AuthStatusView {
    // `accessTokenFingerprint` names the token (the same in every process sharing it), never shows it.
    return { ...this.auth.getStatus(), storeKind: this.store, pid: process.pid };
  }
}

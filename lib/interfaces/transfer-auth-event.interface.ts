import type { TransferAuthErrorCode } from '../errors/transfer-auth.error';

/** A token was obtained with the agent credentials (Get token). */
export interface TokenAcquiredEvent {
  type: 'token.acquired';
  at: Date;
  /** The new access token's fingerprint (first 8 hex digits of its SHA-256). */
  fingerprint: string;
  accessExpiresAt: Date;
  refreshExpiresAt: Date;
}

/** A token was obtained with the refresh token (Refresh token). */
export interface TokenRefreshedEvent {
  type: 'token.refreshed';
  at: Date;
  /** The new access token's fingerprint (first 8 hex digits of its SHA-256). */
  fingerprint: string;
  accessExpiresAt: Date;
  refreshExpiresAt: Date;
}

/** A renewal attempt failed (`background`: nobody was waiting for it). */
export interface TokenFailedEvent {
  type: 'token.failed';
  at: Date;
  code: TransferAuthErrorCode;
  status?: number;
  message: string;
  /** Whether the failure happened in the background (the schedule) or for a waiting caller. */
  background: boolean;
}

/** The cached token was dropped by `invalidate()`. */
export interface TokenInvalidatedEvent {
  type: 'token.invalidated';
  at: Date;
  /** The fingerprint of the access token dropped. */
  fingerprint: string;
}

/** What `TransferAuthService.events$` emits. Never carries a token or a secret. */
export type TransferAuthEvent = TokenAcquiredEvent | TokenRefreshedEvent | TokenFailedEvent | TokenInvalidatedEvent;

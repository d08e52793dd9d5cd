export type {
  RefreshHttpMethod,
  RefreshTokenLocation,
  TransferAuthModuleOptions,
  TransferAuthRefreshOptions,
  TransferAuthRetryOptions,
  TransferAuthTelemetryOptions,
  TransferHttpDefaults,
  TransferHttpReservedDefaults,
} from './transfer-auth-module-options.interface';
export type {
  TransferAuthLastError,
  TransferAuthState,
  TransferAuthStatus,
  TransferAuthStoreStatus,
} from './transfer-auth-status.interface';
export type {
  TokenAcquiredEvent,
  TokenFailedEvent,
  TokenInvalidatedEvent,
  TokenRefreshedEvent,
  TransferAuthEvent,
} from './transfer-auth-event.interface';

export { TransferAuthModule } from './transfer-auth.module';
export { TransferAuthService } from './transfer-auth.service';
export { TransferAuthError, TransferAuthErrorCode } from './errors/transfer-auth.error';
export { TransferAuthErrorFilter, type TransferAuthErrorAnswer } from './errors/transfer-auth-error.filter';
export type { AgentSecretProvider } from './upstream/agent-secret';
export type { TransferAuthErrorOptions } from './errors/transfer-auth.error';
export {
  type TransferAuthModuleAsyncOptions,
  type TransferAuthModuleExtras,
  type TransferAuthModuleSyncOptions,
} from './transfer-auth.module-definition';
export { AgentAuthRequestDto, AgentTokenResponseDto, RefreshTokenRequestDto } from './dto';
export type {
  RefreshHttpMethod,
  RefreshTokenLocation,
  TokenAcquiredEvent,
  TokenFailedEvent,
  TokenInvalidatedEvent,
  TokenRefreshedEvent,
  TransferAuthEvent,
  TransferAuthLastError,
  TransferAuthStoreStatus,
  TransferAuthModuleOptions,
  TransferAuthRefreshOptions,
  TransferAuthRetryOptions,
  TransferAuthTelemetryOptions,
  TransferHttpDefaults,
  TransferHttpReservedDefaults,
  TransferAuthState,
  TransferAuthStatus,
} from './interfaces';
export {
  AGENTS_PATH,
  DEFAULT_API_TIMEOUT_MS,
  DEFAULT_HTTP_TIMEOUT_MS,
  DEFAULT_AUTH_PATH,
  DEFAULT_BASE_URL,
  TRANSFER_AUTH_MODULE_OPTIONS,
} from './transfer-auth.constants';
export { TransferHttpService } from './transfer-http/transfer-http.service';
export {
  attachTransferAuth,
  type AxiosInstanceLike,
  type TransferTokenSource,
} from './transfer-http/attach-transfer-auth';
export {
  getTransferAuthToken,
  getTransferHttpToken,
  InjectTransferAuth,
  InjectTransferHttp,
} from './transfer-auth.decorators';
export {
  InProcessTokenStore,
  type StoredTransferToken,
  type TransferTokenStore,
  type TransferTokenStoreContext,
  type TransferTokenStoreLock,
} from './token-store';

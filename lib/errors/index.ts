export { TransferAuthError, TransferAuthErrorCode } from './transfer-auth.error';
export type { TransferAuthErrorOptions } from './transfer-auth.error';

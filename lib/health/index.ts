export { TransferAuthHealthIndicator } from './transfer-auth.health';
export type { TransferAuthHealthData, TransferAuthHealthOptions } from './transfer-auth.health';

export { TransferAuthHealthIndicator } from './transfer-auth.health';
export type {
  TransferAuthHealthCode,
  TransferAuthHealthData,
  TransferAuthHealthOptions,
  TransferAuthHealthState,
} from './transfer-auth.health';

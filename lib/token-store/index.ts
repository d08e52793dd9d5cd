export { InProcessTokenStore } from './in-process-token-store';
export type {
  StoredTransferToken,
  TransferTokenStore,
  TransferTokenStoreContext,
  TransferTokenStoreLock,
} from './transfer-token-store.interface';

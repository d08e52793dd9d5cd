export { InProcessTokenStore } from './in-process-token-store';
export type { StoredTransferToken, TransferTokenStore, TransferTokenStoreLock } from './transfer-token-store.interface';

import axios from 'axios';
import type { ResolvedTransferHttpOptions } from '../upstream/resolve-options';
import { hookAdapter } from './adapter-hook';
import { authenticating, type TransferTokenSource } from './attach-transfer-auth';
import { withDeadline } from './request-deadline';
import { TransferHttpService } from './transfer-http.service';

/**
 * @internal The client of one registration: an axios instance for the base URL, made with the user's
 * `httpDefaults`, whose adapter authenticates (outside) and holds each exchange to `httpTimeoutMs`
 * (inside, so that the retry after a 401 gets a deadline of its own and the token wait is not under it).
 */
export function createTransferHttpService(
  source: TransferTokenSource,
  { httpDefaults, httpTimeoutMs }: ResolvedTransferHttpOptions,
): TransferHttpService {
  const instance = axios.create({ ...httpDefaults, baseURL: source.getBaseUrl() });
  const authenticate = authenticating(source);
  hookAdapter(instance, (next) => authenticate(withDeadline(next, httpTimeoutMs)));
  return new TransferHttpService(instance);
}

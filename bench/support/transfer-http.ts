import axios, { type AxiosInstance } from 'axios';
import * as lib from '../../lib/index';
import type { TransferAuthService } from '../../lib/index';

/**
 * The module's authenticated client, as cases 3 and 4 use it: `attachTransferAuth(instance, auth)` on a
 * plain axios instance. Looked up at run time so that the benchmarks compile and run before the
 * function exists; LEAD: if it is renamed or takes other arguments, this is the one place to adapt.
 */
export type AttachTransferAuth = (instance: AxiosInstance, auth: TransferAuthService) => unknown;

/** `attachTransferAuth` from lib/index.ts, or `undefined` while it is not exported (cases print "pending"). */
export function findAttachTransferAuth(): AttachTransferAuth | undefined {
  const candidate: unknown = (lib as unknown as Record<string, unknown>)['attachTransferAuth'];
  return typeof candidate === 'function' ? (candidate as AttachTransferAuth) : undefined;
}

/** The module's client: a plain axios instance for the fake, with `attachTransferAuth` applied. */
export function moduleClient(attach: AttachTransferAuth, baseUrl: string, auth: TransferAuthService): AxiosInstance {
  const instance = axios.create({ baseURL: baseUrl });
  attach(instance, auth);
  return instance;
}

import type { AxiosResponse, InternalAxiosRequestConfig } from 'axios';
import { inspect } from 'node:util';
import { REDACTED } from '../internal.constants';

const MASKED = `Bearer ${REDACTED}`;

/**
 * @internal What users read from `config.headers` once the request has gone: the token masked. It was
 * set under `Authorization` (a plain write masks it) unless another spelling was there already.
 */
export function maskHeader(config: InternalAxiosRequestConfig, token: string): void {
  const headers = config.headers;
  if (headers?.Authorization === `Bearer ${token}`) headers.Authorization = MASKED;
  else if (headers?.has?.('Authorization')) headers.set('Authorization', MASKED);
}

/** @internal A successful exchange: the raw request refuses to print itself (see `hideRequest`). */
export function concealResponse(response: AxiosResponse): void {
  hideRequest(response);
}

/**
 * @internal A failed exchange. Errors are rare and get logged whole: besides the guard on the raw
 * request, `request` on the error and on its response becomes a non-enumerable getter (which inspect
 * and JSON do not list).
 */
export function concealError(error: unknown): void {
  if (typeof error !== 'object' || error === null) return;
  const response: unknown = (error as { response?: unknown }).response;
  for (const holder of [error, response]) {
    if (typeof holder !== 'object' || holder === null || !('request' in holder)) continue;
    hideRequest(holder);
    const request: unknown = holder.request;
    Object.defineProperty(holder, 'request', { get: () => request, enumerable: false, configurable: true });
  }
}

/**
 * The raw request (Node's `ClientRequest`, or fetch's `Request`) holds the token in its headers
 * (`_header`), and a response or an error leads to it through `request`. It stays readable there as
 * it is, but refuses to print itself: `inspect` (whatever the depth, `showHidden` or `getters`) shows
 * a stub, and `JSON` leaves it out (`toJSON` returning `undefined` drops the key). Two plain writes;
 * turning `request` on every response into a getter cost ~1.5 us a request (V8 makes the response a
 * dictionary object). A request object that takes no new properties gets that getter all the same.
 */
function hideRequest(holder: { request?: unknown }): void {
  const request: unknown = holder.request;
  if (typeof request !== 'object' || request === null) return;
  try {
    (request as Guarded)[inspect.custom] = printStub;
    (request as Guarded).toJSON = omitFromJson;
  } catch {
    Object.defineProperty(holder, 'request', { get: () => request, enumerable: false, configurable: true });
  }
}

interface Guarded {
  [inspect.custom]?: typeof printStub;
  toJSON?: typeof omitFromJson;
}

function printStub(this: object): string {
  return `[${this.constructor?.name ?? 'request'}: not shown, it holds the access token]`;
}

function omitFromJson(): undefined {
  return undefined;
}

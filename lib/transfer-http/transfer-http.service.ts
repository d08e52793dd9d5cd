import { HttpService } from '@nestjs/axios';

/**
 * An `HttpService` (from `@nestjs/axios`) for the Transfer API: `axiosRef.defaults.baseURL` is the
 * configured `baseUrl`, and every request to it or below it carries `Authorization: Bearer
 * <access_token>`, follows no redirect and, on a 401, is sent once more with a fresh token. Requests
 * elsewhere go out untouched. Each exchange has `httpTimeoutMs` from connect to the last byte;
 * `httpDefaults` are its other axios defaults. Inject it by class (unnamed registration) or with
 * `@InjectTransferHttp(name)`.
 *
 * Its Observables error with:
 * - a `TransferAuthError` when no token can be had, for the request or for its retry after a 401 (the
 *   codes of `TransferAuthService.getAccessToken()`: `UPSTREAM_UNAVAILABLE`, `INVALID_CREDENTIALS`,
 *   `INVALID_RESPONSE`, `SHUTDOWN`, `INVALID_CONFIG`); the request is then not sent;
 * - else the `AxiosError` axios gives: a status outside `validateStatus` (also the 401 of the retry), a
 *   network error, or `ECONNABORTED` past `httpTimeoutMs`. Its `config` shows the token as
 *   `Bearer [redacted]`, and neither `inspect` nor `JSON.stringify` of it shows the token.
 */
export class TransferHttpService extends HttpService {}

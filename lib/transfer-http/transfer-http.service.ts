import { HttpService } from '@nestjs/axios';

/**
 * An `HttpService` (from `@nestjs/axios`) for the Transfer API: `baseURL` is the configured base URL,
 * and every request to it carries `Authorization: Bearer <access_token>`, renewed once on a 401.
 * Inject it by class (unnamed registration) or with `@InjectTransferHttp(name)`.
 */
export class TransferHttpService extends HttpService {}

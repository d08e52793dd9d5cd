import { Controller, Get, HttpException, Optional, Query } from '@nestjs/common';
import { isAxiosError } from 'axios';
import {
  AGENTS_PATH,
  InjectTransferHttp,
  TransferAuthError,
  TransferHttpService,
} from 'nestjs-freedompay-transfer-auth';
import { firstValueFrom } from 'rxjs';
import { USD_AGENT } from './freedompay.config';

/** Calls the Transfer API's Get agents through the authenticated client: no token handling here. */
@Controller('agents')
export class AgentsController {
  constructor(
    private readonly http: TransferHttpService,
    @Optional() @InjectTransferHttp(USD_AGENT) private readonly usdHttp?: TransferHttpService,
  ) {}

  /** `GET /agents` (the default agent) or `GET /agents?agent=usd` (the second one, when configured). */
  @Get()
  async list(@Query('agent') agent?: string): Promise<unknown> {
    const http = agent === USD_AGENT ? this.usdHttp : agent === undefined ? this.http : undefined;
    if (http === undefined) throw new HttpException({ message: `No agent registered as "${agent}".` }, 404);
    try {
      const response = await firstValueFrom(http.get<unknown>(AGENTS_PATH));
      return response.data;
    } catch (error) {
      // The token could not be had, or the API refused the call: say which, never with a token.
      if (error instanceof TransferAuthError)
        throw new HttpException({ code: error.code, message: error.message }, 503);
      if (isAxiosError(error) && error.response) {
        throw new HttpException({ message: `Freedom Pay answered HTTP ${error.response.status}.` }, 502);
      }
      throw new HttpException({ message: 'Freedom Pay could not be reached.' }, 502);
    }
  }
}

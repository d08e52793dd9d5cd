// agents.service.ts
import { Injectable } from '@nestjs/common';
import { TransferHttpService } from 'nestjs-freedompay-transfer-auth';
import { firstValueFrom } from 'rxjs';

@Injectable()
export class AgentsService {
  constructor(private readonly http: TransferHttpService) {}

  async list(): Promise<unknown> {
    return (await firstValueFrom(this.http.get('/v5/partner/transfer/agents'))).data;
  }
}

import axios, { type AxiosInstance } from 'axios';
import { DEFAULT_AUTH_PATH } from '../../lib/transfer-auth.constants';
import { FakeTransferServer } from '../../lib/testing/fake-transfer-server';
import type { FakeTransferServerOptions } from '../../lib/testing/fake-transfer-server.types';
import { median } from './stats';

/** Starts a loopback fake upstream. Stop it with `fake.stop()`. */
export function startFake(options: FakeTransferServerOptions = {}): Promise<FakeTransferServer> {
  return new FakeTransferServer(options).start();
}

/**
 * The baseline of the latency cases: one bare upstream round trip, a raw axios POST of the agent
 * credentials to the fake's Get token endpoint, answered with a token pair. No validation, no retries.
 */
export class BareRoundTrip {
  private readonly http: AxiosInstance;

  constructor(private readonly fake: FakeTransferServer) {
    this.http = axios.create({ baseURL: fake.url });
  }

  /** One POST; milliseconds from send to parsed answer. */
  async once(): Promise<number> {
    const start = performance.now();
    await this.http.post(DEFAULT_AUTH_PATH, { agent_id: this.fake.agentId, agent_secret: this.fake.agentSecret });
    return performance.now() - start;
  }

  /** The median of `count` sequential POSTs (after one unmeasured, to open the connection). */
  async median(count: number): Promise<number> {
    await this.once();
    const samples: number[] = [];
    for (let i = 0; i < count; i++) samples.push(await this.once());
    return median(samples);
  }
}

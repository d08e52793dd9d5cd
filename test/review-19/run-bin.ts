import type { IncomingMessage, ServerResponse } from 'node:http';
import { LocalHttpServer } from '../support/e2e';

export { binPath, run, type Run } from '../support/cli';

/** Helpers of the issue-19 review specs (not a spec): the compiled bin as a child process, as test/doctor does. */
export const AUTH = '/v5/partner/transfer/agent/auth';

export interface Hit {
  method: string;
  path: string;
  authorization: string | undefined;
  body: string;
  status: number;
}

/** A scripted upstream: records every request, answers with `answer` (status, JSON body, headers). */
export class ScriptedUpstream extends LocalHttpServer {
  readonly hits: Hit[] = [];
  constructor(
    private readonly answer: (hit: Omit<Hit, 'status'>, index: number) => [number, unknown, Record<string, string>?],
  ) {
    super();
  }
  protected handle(req: IncomingMessage, res: ServerResponse): void {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      const hit = {
        method: req.method ?? '',
        path: (req.url ?? '').split('?')[0] as string,
        authorization: req.headers.authorization,
        body,
      };
      const [status, payload, headers] = this.answer(hit, this.hits.length);
      this.hits.push({ ...hit, status });
      res.writeHead(status, { 'Content-Type': 'application/json', ...(headers ?? {}) }).end(JSON.stringify(payload));
    });
  }
}

/** An upstream timestamp `seconds` from now, in the upstream's format. */
export function inSeconds(seconds: number): string {
  return new Date(Date.now() + seconds * 1000).toISOString().replace('Z', '000Z');
}

export function isLogin(hit: Omit<Hit, 'status'>): boolean {
  return hit.method === 'POST' && hit.path === AUTH && hit.body.includes('agent_secret');
}

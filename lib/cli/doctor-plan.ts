import type { RefreshHttpMethod } from '../interfaces/transfer-auth-module-options.interface';
import { REFRESH_METHODS } from '../transfer-auth.constants';

// What the doctor will do, said before it sends anything. Kept apart from doctor.ts, which loads the
// answer validation (class-validator, class-transformer: peer dependencies), so that `--help`, the plan
// and `fake` run without them.

/** The most requests one run sends, whatever it finds. */
export const MAX_DOCTOR_CALLS = 25;

/** The deadline of a whole run: 25 requests of up to 10 s each would otherwise take minutes. */
export const DOCTOR_RUN_DEADLINE_MS = 60_000;

/** A route where Refresh token may live. */
export interface Route {
  readonly method: RefreshHttpMethod;
  readonly path: string;
}

/** The routes where Refresh token may live, in the order they are tried. */
export function candidateRoutes(authPath: string): Route[] {
  const sibling = authPath.replace(/\/[^/]*$/, '/refresh');
  const paths = [...new Set([authPath, sibling, `${authPath.replace(/\/$/, '')}/refresh`])];
  return paths.flatMap((path) => REFRESH_METHODS.map((method) => ({ method, path })));
}

/** The plan, as said before anything is sent. */
export function describePlan(settings: { readonly baseUrl: string; readonly authPath: string }): string[] {
  const routes = candidateRoutes(settings.authPath);
  const paths = [...new Set(routes.map((r) => r.path))];
  return [
    `It will send at most ${MAX_DOCTOR_CALLS} requests to ${settings.baseUrl}, within ${DOCTOR_RUN_DEADLINE_MS / 1000} s:`,
    `  1. Get token: POST ${settings.authPath} with FREEDOMPAY_AGENT_ID and FREEDOMPAY_AGENT_SECRET (one login).`,
    `  2. Up to ${routes.length} probes with a made-up refresh token: ${REFRESH_METHODS.join(', ')} on ${paths.join(', ')}.`,
    '  3. On a route that exists: refreshes with real refresh tokens (in the header, in the body, both),',
    '     one reuse of a spent refresh token, and the newest refresh token once more.',
    '  Tokens it gets are not used for anything else; they expire on their own.',
  ];
}

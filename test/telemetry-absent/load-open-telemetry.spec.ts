import * as realApi from '@opentelemetry/api';
import { createTelemetry, loadOpenTelemetry } from '../../lib/telemetry/otel-telemetry';
import { NO_TELEMETRY, type UpstreamRequest } from '../../lib/telemetry/telemetry';

type OtelTelemetryModule = typeof import('../../lib/telemetry/otel-telemetry');
type TelemetryModule = typeof import('../../lib/telemetry/telemetry');

const IDENTITY = { name: 'default', agentId: undefined };
const REQUEST: UpstreamRequest = { kind: 'login', method: 'POST', url: 'http://127.0.0.1:9/v5/partner/auth' };

/**
 * lib/telemetry/otel-telemetry.ts (and the telemetry.ts it imports), loaded afresh (its cache empty),
 * with `@opentelemetry/api` as `factory` gives it.
 */
function freshTelemetryModule(factory: () => unknown): OtelTelemetryModule & Pick<TelemetryModule, 'NO_TELEMETRY'> {
  let loaded: (OtelTelemetryModule & Pick<TelemetryModule, 'NO_TELEMETRY'>) | undefined;
  jest.isolateModules(() => {
    jest.doMock('@opentelemetry/api', factory);
    /* eslint-disable @typescript-eslint/no-require-imports */
    const otel = require('../../lib/telemetry/otel-telemetry') as OtelTelemetryModule;
    const { NO_TELEMETRY: none } = require('../../lib/telemetry/telemetry') as TelemetryModule;
    /* eslint-enable @typescript-eslint/no-require-imports */
    loaded = { ...otel, NO_TELEMETRY: none };
  });
  return loaded as OtelTelemetryModule & Pick<TelemetryModule, 'NO_TELEMETRY'>;
}

function moduleNotFound(): never {
  throw Object.assign(new Error("Cannot find module '@opentelemetry/api'"), { code: 'MODULE_NOT_FOUND' });
}

afterEach(() => {
  jest.dontMock('@opentelemetry/api');
});

describe('createTelemetry(identity, null): no @opentelemetry/api', () => {
  const telemetry = createTelemetry(IDENTITY, null);

  it('is NO_TELEMETRY, which times no waits', () => {
    expect(telemetry).toBe(NO_TELEMETRY);
    expect(telemetry.timesWaits).toBe(false);
    expect(telemetry.activeContext()).toBeUndefined();
  });

  it('runs an upstream call as it is, settled as the call settles, without asking for its outcome', async () => {
    const outcomeOf = jest.fn(() => ({ status: 200, code: undefined }));
    const answer = { token: 'x' };
    await expect(telemetry.upstream(REQUEST, undefined, () => Promise.resolve(answer), outcomeOf)).resolves.toBe(
      answer,
    );
    const failure = new Error('upstream down');
    await expect(telemetry.upstream(REQUEST, undefined, () => Promise.reject(failure), outcomeOf)).rejects.toBe(
      failure,
    );
    expect(outcomeOf).not.toHaveBeenCalled();
  });

  it('never reads the observed state, and every other report is a no-op', () => {
    const state = {
      accessSecondsLeft: jest.fn(),
      refreshSecondsLeft: jest.fn(),
      accessExpiresAt: jest.fn(),
      degraded: jest.fn(),
    };
    const stop = telemetry.observe(state);
    expect(() => {
      telemetry.callersWaited([1.5], 'ok');
      telemetry.invalidated('dropped');
      telemetry.adopted();
      telemetry.lock('acquired');
      telemetry.storeFailed('read', 'timeout');
      stop();
    }).not.toThrow();
    const reads = [state.accessSecondsLeft, state.refreshSecondsLeft, state.accessExpiresAt, state.degraded];
    expect(reads.map((f) => f.mock.calls.length)).toEqual([0, 0, 0, 0]);
  });

  it('differs from the telemetry made with the API present (so the check above can fail)', () => {
    const withApi = createTelemetry(IDENTITY, realApi);
    expect(withApi).not.toBe(NO_TELEMETRY);
    expect(withApi.timesWaits).toBe(true);
  });
});

describe('loadOpenTelemetry()', () => {
  it('gives the installed @opentelemetry/api', () => {
    expect(loadOpenTelemetry()).toBe(realApi);
  });

  it('looks the API up once: a missing one is not required again, and createTelemetry then defaults to NO_TELEMETRY', () => {
    const factory = jest.fn(moduleNotFound); // a throwing factory is not cached by Jest: each require calls it
    const lib = freshTelemetryModule(factory);
    expect([lib.loadOpenTelemetry(), lib.loadOpenTelemetry(), lib.loadOpenTelemetry()]).toEqual([null, null, null]);
    expect(lib.createTelemetry(IDENTITY)).toBe(lib.NO_TELEMETRY);
    expect(factory).toHaveBeenCalledTimes(1);
  });

  it('keeps the API it found, even after the module registry is emptied', () => {
    const lib = freshTelemetryModule(() => ({ ...realApi, marker: 'first load' }));
    const first = lib.loadOpenTelemetry();
    expect(first).toMatchObject({ marker: 'first load' });
    jest.resetModules(); // a require now would build a new instance of the API
    jest.doMock('@opentelemetry/api', () => ({ ...realApi, marker: 'second load' }));
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    expect(require('@opentelemetry/api')).toMatchObject({ marker: 'second load' });
    expect(lib.loadOpenTelemetry()).toBe(first);
  });
});

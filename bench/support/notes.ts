/** How each case is measured: printed under the table in docs/benchmarks.md. */
export const METHOD_NOTES: readonly string[] = [
  'Every ratio is module / baseline, both measured in the same process and the same run, one after the other ' +
    '(alternating which goes first); a case is run several times and the table gives the median and the range ' +
    'over the runs. The upstream is the loopback `FakeTransferServer` in the same process: no network.',
  '**1. Cached token read**: `auth.getAccessToken()` on `TransferAuthService` from a Nest application context, ' +
    'token cached, in an await loop (1,000 awaits per sample) and in a burst of 10,000 calls in one event-loop ' +
    'turn (per call); tinybench, p50. Baselines in the same run: the floor, `Promise.resolve(cachedString)`, and ' +
    'the floor plus the clock reads that prove a token usable (`performance.now()` and `Date.now()` compared ' +
    'with a deadline). 0.1.0 reported 0.84x of the floor here: it read the clocks once per turn and cleared that ' +
    'on `process.nextTick`, which an await loop never lets run, so that figure measured a hot path that served ' +
    'expired tokens. Since 0.2.0 both clocks are read on every call.',
  '**2. Stampede**: the clock of a lifecycle (real HTTP client) is moved past the usable end of its token, then ' +
    "10,000 callers call `getAccessToken()` in one go; each caller's wait runs from its own call to its answer. " +
    'Baselines: one bare round trip (raw axios POST of the credentials, median of 15), and 10,000 callers in the ' +
    'same loop awaiting one shared raw POST (the ideal single-flight; starting 10,000 callers alone takes longer ' +
    'than a loopback round trip). A full GC before each side; each run is the median of several stampedes.',
  '**3. Without the module**: `GET /v5/partner/transfer/agents` at a steady 1,000 requests/s (10 every 10 ms), ' +
    'access tokens living 5 s, through (a) Get token before every request, (b) the axios-auth-refresh pattern ' +
    '(token in a variable, 401 -> Get token shared while in flight -> one retry), (c) a plain axios instance with ' +
    '`attachTransferAuth`. Upstream calls are everything the fake received (auth, refresh, API, 401s included); ' +
    'latency is per API request as its caller sees it, token handling included. The brief sets no target here.',
  '**4. Authenticated request overhead**: the same GET through `attachTransferAuth` and through an axios ' +
    'instance with a fixed `Authorization` header (and `maxRedirects: 0`, as the module sets); tinybench, p50.',
  '**5. Long run**: `forceRefresh()` 100,000 times on the Nest-free lifecycle with an in-memory endpoint; heap ' +
    'used after a full GC before and after; time per cycle over the first and the last 10,000 cycles.',
  '**6. Refresh latency**: access tokens living 3 s with the largest margin, so a token goes stale every second ' +
    'or so; from the stale moment (computed from each answer as the lifecycle computes it) to the new token ' +
    'being cached, against one raw POST started from a timer after 100 ms of idling (after any idle pause a ' +
    'round trip costs several times a back-to-back one here, and the renewal always comes after one).',
  '**8. OpenTelemetry SDK registered vs not**: three ways of running the module, side by side in the same run: ' +
    '(a) `@opentelemetry/api` installed, no SDK registered (the module gets noop instruments at init); (b) an SDK ' +
    'registered globally before the module initialises: a `MeterProvider` with a (pull) reader, a ' +
    '`BasicTracerProvider` with a batch span processor, an `AsyncLocalStorageContextManager`; (c) `telemetry: ' +
    'false`, with the same SDK registered. The globals of the API are set for each side as it runs (a tinybench ' +
    '`beforeAll`) and cleared at the end of the case. Cached path: `await auth.getAccessToken()` on three Nest ' +
    'application contexts, 1,000 awaits per sample, p50; target <= 1.10x (noise), as the cached path touches no ' +
    "telemetry. Measured with the SDK's context manager registered, then entered, as it is after the first " +
    "instrumented call (the module's first upstream call enters it): once entered, Node 20 runs a promise hook " +
    'on every promise of the process, which slows every await of the app, with the module or without it (the ' +
    '"every await of the process pays it" row; (b) against (c) in that state is the module\'s share). Slow path: ' +
    "case 2's stampede, 10,000 callers on one renewal against the fake, on three lifecycles wired as the service " +
    "wires them with each side's telemetry, (b) and (c) with the context manager entered. Target <= 1.5x for " +
    "(b) against (c), the module's own share with the same SDK: a renewal opens a span and records its " +
    "metrics, and each caller's wait is one histogram recording, made after the callers resumed; a loopback " +
    'round trip (under a millisecond) magnifies any of it; 1.5x still catches a cost that grows with the ' +
    'number of waiting callers (before waits were recorded after the callers resumed: 3.89x). (b) against (a) ' +
    "adds the SDK's context manager itself ((c) against (a)), which the app pays for any instrumentation. " +
    'The last row checks the set-up: the SDK got every renewal, span and wait of (b), nothing of (a) ' +
    'or (c).',
];

import axios from 'axios';
import { Logger, type DynamicModule, type OnApplicationBootstrap, type Provider } from '@nestjs/common';
import { DiscoveryModule, DiscoveryService } from '@nestjs/core';
import { TransferAuthError } from './errors/transfer-auth.error';
import type { TransferAuthModuleOptions } from './interfaces/transfer-auth-module-options.interface';
import { resolveTransferHttpOptions } from './upstream/resolve-options';
import { TRANSFER_AUTH_MODULE_OPTIONS } from './transfer-auth.constants';
import { getTransferAuthToken, getTransferHttpToken } from './transfer-auth.decorators';
import { duplicateRegistrationMessage } from './transfer-auth.messages';
import { TransferAuthService } from './transfer-auth.service';
import { createTransferHttpService } from './transfer-http/create-transfer-http';
import { TransferHttpService } from './transfer-http/transfer-http.service';
import { redactSecrets } from './utils/redact-secrets';

/** Extras of `forRoot` / `forRootAsync` beyond the options themselves. */
export interface TransferAuthModuleExtras {
  /** Register the module globally, so that every module can inject its services without importing it. */
  isGlobal?: boolean | undefined;
  /**
   * Name of this registration, for apps with several agents: its service and client are then injected
   * with `@InjectTransferAuth(name)` / `@InjectTransferHttp(name)`. Unnamed: injected by class.
   */
  name?: string | undefined;
}

const OPTION_KEYS: readonly (keyof TransferAuthModuleOptions)[] = [
  'agentId',
  'agentSecret',
  'baseUrl',
  'authPath',
  'refresh',
  'refreshMarginMs',
  'requestTimeoutMs',
  'retry',
  'fetchOnStartup',
  'store',
  'telemetry',
  'httpTimeoutMs',
  'httpDefaults',
];

/**
 * Each registration provides its own service and client under its own tokens, so two registrations
 * never share a token, a timer or an error.
 */
/** @internal */
export function withServices(definition: DynamicModule, { isGlobal, name }: TransferAuthModuleExtras): DynamicModule {
  if (name !== undefined && (typeof name !== 'string' || name.trim() === '')) {
    throw new TransferAuthError(
      'INVALID_CONFIG',
      'Invalid TransferAuthModule option `name`: expected a non-empty string.',
    );
  }
  const authToken = getTransferAuthToken(name);
  const httpToken = getTransferHttpToken(name);
  const providers: Provider[] = [
    ...(definition.providers ?? []),
    {
      provide: authToken,
      useFactory: (options: TransferAuthModuleOptions) => new TransferAuthService(options, name),
      inject: [TRANSFER_AUTH_MODULE_OPTIONS],
    },
    {
      provide: `${String(authToken)}:registration-check`,
      useFactory: (discovery: DiscoveryService, auth: TransferAuthService) => new RegistrationCheck(discovery, auth),
      inject: [DiscoveryService, authToken],
    },
    {
      provide: httpToken,
      // Invalid options fail the init (the service validates them all, by name); until then the
      // client rejects every request with that INVALID_CONFIG instead of throwing while Nest builds it.
      useFactory: (auth: TransferAuthService, options: TransferAuthModuleOptions) => {
        try {
          return createTransferHttpService(auth, resolveTransferHttpOptions(options, name));
        } catch (error) {
          if (!TransferAuthError.is(error, 'INVALID_CONFIG')) throw error;
          return new TransferHttpService(axios.create({ adapter: () => Promise.reject(error) }));
        }
      },
      inject: [authToken, TRANSFER_AUTH_MODULE_OPTIONS],
    },
  ];
  return {
    ...definition,
    global: isGlobal,
    imports: [...(definition.imports ?? []), DiscoveryModule],
    providers,
    exports: [...(definition.exports ?? []), authToken, httpToken],
  };
}

/**
 * The options live in the container as a copy whose secret `inspect` and `JSON.stringify` show as
 * `[redacted]`: whoever prints the module's providers (a debugger, a devtools graph) sees no secret.
 */
/** @internal */
export function protectOptionsProvider(definition: DynamicModule): DynamicModule {
  const providers = definition.providers?.map((provider: Provider): Provider => {
    if (typeof provider !== 'object' || provider.provide !== TRANSFER_AUTH_MODULE_OPTIONS) return provider;
    if ('useValue' in provider) return { ...provider, useValue: protect(provider.useValue) };
    if ('useFactory' in provider) {
      const factory = provider.useFactory;
      return { ...provider, useFactory: async (...args: unknown[]) => protect(await factory(...args)) };
    }
    return provider;
  });
  return { ...definition, providers };
}

function protect(options: unknown): unknown {
  if (typeof options !== 'object' || options === null) return options; // rejected at init, by name
  const source = options as Record<string, unknown>;
  const copy: Record<string, unknown> = {};
  for (const key of OPTION_KEYS) if (source[key] !== undefined) copy[key] = source[key];
  // httpDefaults may hold API-key headers or agents: printed as [redacted] too.
  return Object.freeze(redactSecrets(copy, ['agentSecret', 'httpDefaults']));
}

/**
 * Warns at bootstrap when another registration in the same application serves the same agent at the
 * same base URL (say, once global and once copied into a feature module): two token caches, two
 * logins, two schedules, where one was meant. Only the later of the two warns.
 */
class RegistrationCheck implements OnApplicationBootstrap {
  constructor(
    private readonly discovery: DiscoveryService,
    private readonly auth: TransferAuthService,
  ) {}

  onApplicationBootstrap(): void {
    const services = this.discovery
      .getProviders()
      .map((wrapper) => wrapper.instance as unknown)
      .filter((instance): instance is TransferAuthService => instance instanceof TransferAuthService);
    const mine = services.indexOf(this.auth);
    const twin = services.slice(0, mine).find((other) => other.sameAgentAs(this.auth));
    if (twin === undefined) return;
    const agentId = this.auth.agentIdForMessages();
    new Logger('TransferAuth').warn(
      duplicateRegistrationMessage(agentId, twin.registrationName, this.auth.registrationName),
    );
  }
}

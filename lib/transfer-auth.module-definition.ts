import { ConfigurableModuleBuilder, type DynamicModule, type Provider } from '@nestjs/common';
import { TransferAuthError } from './errors/transfer-auth.error';
import type { TransferAuthModuleOptions } from './interfaces/transfer-auth-module-options.interface';
import { redactSecrets } from './resolve-options';
import { DEFAULT_API_TIMEOUT_MS, TRANSFER_AUTH_MODULE_OPTIONS } from './transfer-auth.constants';
import { TransferAuthService } from './transfer-auth.service';
import { attachTransferAuth } from './transfer-http/attach-transfer-auth';
import { TransferHttpService } from './transfer-http/transfer-http.service';
import { getTransferAuthToken, getTransferHttpToken } from './transfer-auth.tokens';
import axios from 'axios';

/** Extras of `forRoot` / `forRootAsync` beyond the options themselves. */
export interface TransferAuthModuleExtras {
  /** Register the module globally, so that every module can inject its services without importing it. */
  isGlobal?: boolean;
  /**
   * Name of this registration, for apps with several agents: its service and client are then injected
   * with `@InjectTransferAuth(name)` / `@InjectTransferHttp(name)`. Unnamed: injected by class.
   */
  name?: string;
}

export const {
  ConfigurableModuleClass: ConfigurableTransferAuthModule,
  OPTIONS_TYPE: TRANSFER_AUTH_OPTIONS_TYPE,
  ASYNC_OPTIONS_TYPE: TRANSFER_AUTH_ASYNC_OPTIONS_TYPE,
} = new ConfigurableModuleBuilder<TransferAuthModuleOptions>({
  moduleName: 'TransferAuth',
  optionsInjectionToken: TRANSFER_AUTH_MODULE_OPTIONS,
})
  .setClassMethodName('forRoot')
  .setFactoryMethodName('createTransferAuthOptions')
  .setExtras<TransferAuthModuleExtras>({ isGlobal: false, name: undefined }, (definition, extras) =>
    withServices(protectOptionsProvider(definition), extras),
  )
  .build();

/** What `forRoot` takes: the options, plus `isGlobal`. */
export type TransferAuthModuleSyncOptions = typeof TRANSFER_AUTH_OPTIONS_TYPE;
/** What `forRootAsync` takes: `imports`, `inject`, `useFactory` | `useClass` | `useExisting`, `isGlobal`. */
export type TransferAuthModuleAsyncOptions = typeof TRANSFER_AUTH_ASYNC_OPTIONS_TYPE;

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
];

/**
 * Each registration provides its own service and client under its own tokens, so two registrations
 * never share a token, a timer or an error.
 */
function withServices(definition: DynamicModule, { isGlobal, name }: TransferAuthModuleExtras): DynamicModule {
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
      provide: httpToken,
      useFactory: (auth: TransferAuthService) => {
        const instance = axios.create({ timeout: DEFAULT_API_TIMEOUT_MS });
        attachTransferAuth(instance, auth);
        return new TransferHttpService(instance);
      },
      inject: [authToken],
    },
  ];
  return { ...definition, global: isGlobal, providers, exports: [...(definition.exports ?? []), authToken, httpToken] };
}

/**
 * The options live in the container as a copy whose secret `inspect` and `JSON.stringify` show as
 * `[redacted]`: whoever prints the module's providers (a debugger, a devtools graph) sees no secret.
 */
function protectOptionsProvider(definition: DynamicModule): DynamicModule {
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
  return Object.freeze(redactSecrets(copy, ['agentSecret']));
}

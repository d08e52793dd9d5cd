import { ConfigurableModuleBuilder, type DynamicModule, type Provider } from '@nestjs/common';
import type { TransferAuthModuleOptions } from './interfaces/transfer-auth-module-options.interface';
import { redactSecrets } from './resolve-options';

/** Extras of `forRoot` / `forRootAsync` beyond the options themselves. */
export interface TransferAuthModuleExtras {
  /** Register the module globally, so that every module can inject `TransferAuthService`. */
  isGlobal?: boolean;
}

export const {
  ConfigurableModuleClass: ConfigurableTransferAuthModule,
  MODULE_OPTIONS_TOKEN: TRANSFER_AUTH_MODULE_OPTIONS,
  OPTIONS_TYPE: TRANSFER_AUTH_OPTIONS_TYPE,
  ASYNC_OPTIONS_TYPE: TRANSFER_AUTH_ASYNC_OPTIONS_TYPE,
} = new ConfigurableModuleBuilder<TransferAuthModuleOptions>({ moduleName: 'TransferAuth' })
  .setClassMethodName('forRoot')
  .setFactoryMethodName('createTransferAuthOptions')
  .setExtras<TransferAuthModuleExtras>({ isGlobal: false }, (definition, extras) => ({
    ...protectOptionsProvider(definition),
    global: extras.isGlobal,
  }))
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
];

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

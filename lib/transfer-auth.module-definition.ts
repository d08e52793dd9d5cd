import { ConfigurableModuleBuilder } from '@nestjs/common';
import type { TransferAuthModuleOptions } from './interfaces/transfer-auth-module-options.interface';
import { TRANSFER_AUTH_MODULE_OPTIONS } from './transfer-auth.constants';
import { protectOptionsProvider, withServices, type TransferAuthModuleExtras } from './transfer-auth.providers';

export type { TransferAuthModuleExtras } from './transfer-auth.providers';

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

/** What `forRoot` takes: the options, plus `isGlobal` and `name`. */
export type TransferAuthModuleSyncOptions = typeof TRANSFER_AUTH_OPTIONS_TYPE;
/** What `forRootAsync` takes: `imports`, `inject`, `useFactory` | `useClass` | `useExisting`, `isGlobal`, `name`. */
export type TransferAuthModuleAsyncOptions = typeof TRANSFER_AUTH_ASYNC_OPTIONS_TYPE;

import { Inject } from '@nestjs/common';
import { TransferAuthService } from './transfer-auth.service';
import { TransferHttpService } from './transfer-http/transfer-http.service';

const PREFIX = 'nestjs-freedompay-transfer-auth';

/**
 * Injection token of a registration's `TransferAuthService`: the class itself for the unnamed one,
 * a string for `forRoot({ name })`.
 */
export function getTransferAuthToken(name?: string): string | typeof TransferAuthService {
  return name === undefined ? TransferAuthService : `${PREFIX}:TransferAuthService:${name}`;
}

/**
 * Injection token of a registration's authenticated `TransferHttpService`: the class itself for the
 * unnamed one, a string for `forRoot({ name })`.
 */
export function getTransferHttpToken(name?: string): string | typeof TransferHttpService {
  return name === undefined ? TransferHttpService : `${PREFIX}:TransferHttpService:${name}`;
}

/** Injects the `TransferAuthService` of the registration called `name` (none: the unnamed one). */
export const InjectTransferAuth = (name?: string): PropertyDecorator & ParameterDecorator =>
  Inject(getTransferAuthToken(name));

/** Injects the authenticated `TransferHttpService` of the registration called `name` (none: the unnamed one). */
export const InjectTransferHttp = (name?: string): PropertyDecorator & ParameterDecorator =>
  Inject(getTransferHttpToken(name));

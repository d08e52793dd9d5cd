import { inspect } from 'node:util';
import { REDACTED } from '../internal.constants';

/**
 * @internal Makes `keys` of `target` non-enumerable and teaches `inspect` and `JSON.stringify` to show
 * `[redacted]` for them, so a printed options object or DTO never shows a secret.
 */
export function redactSecrets<T extends object>(target: T, keys: readonly (keyof T & string)[]): T {
  for (const key of keys) {
    Object.defineProperty(target, key, { value: target[key], enumerable: false, writable: false });
  }
  const printable = (): Record<string, unknown> => {
    const copy: Record<string, unknown> = { ...(target as Record<string, unknown>) };
    for (const key of keys) copy[key] = REDACTED;
    return copy;
  };
  Object.defineProperties(target, {
    toJSON: { value: printable, enumerable: false, configurable: true },
    [inspect.custom]: {
      value: (_depth: number, opts: object) => inspect(printable(), opts),
      enumerable: false,
      configurable: true,
    },
  });
  return target;
}

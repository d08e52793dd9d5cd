import { inspect, type InspectOptionsStylized } from 'node:util';
import { REDACTED } from '../internal.constants';

/**
 * @internal Turns each of `keys` of a DTO under construction into a non-enumerable accessor. Reads and
 * writes work as on a plain field (class-transformer's `plainToInstance`, class-validator,
 * `Object.assign`), but spreads, `Object.keys` and `instanceToPlain` no longer carry the value along.
 */
export function hideFields(dto: object, keys: readonly string[]): void {
  for (const key of keys) {
    let value: unknown = (dto as Record<string, unknown>)[key];
    Object.defineProperty(dto, key, {
      get: () => value,
      set: (next: unknown) => {
        value = next;
      },
      enumerable: false,
      configurable: true,
    });
  }
}

/** @internal `dto` as printed: `fields` in order, unset ones left out, the `secret` ones as `[redacted]`. */
export function redactedView(
  dto: object,
  fields: readonly string[],
  secret: readonly string[],
): Record<string, unknown> {
  const view: Record<string, unknown> = {};
  for (const key of fields) {
    const value = (dto as Record<string, unknown>)[key];
    if (value !== undefined) view[key] = secret.includes(key) ? REDACTED : value;
  }
  return view;
}

/** @internal What `util.inspect` shows of a DTO: its class name and its {@link redactedView}. */
export function inspectRedacted(name: string, view: Record<string, unknown>, options: InspectOptionsStylized): string {
  const depth = options.depth === null || options.depth === undefined ? options.depth : options.depth - 1;
  return `${name} ${inspect(view, { ...options, depth })}`;
}

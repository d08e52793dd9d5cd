/** @internal How messages name a registration: `forRoot({ name })`, or the unnamed one. */
export function registrationLabel(name: string | undefined): string {
  return name === undefined ? 'the unnamed registration' : `registration \`${name}\``;
}

/** @internal `INVALID_CONFIG` message: names the option and the registration, never a value. */
export function invalidOptionMessage(option: string, why: string, name?: string): string {
  return `Invalid TransferAuthModule option \`${option}\` (${registrationLabel(name)}): ${why}.`;
}

/** @internal Warning when two registrations in one application renew the same agent's token apart. */
export function duplicateRegistrationMessage(
  agentId: string,
  first: string | undefined,
  second: string | undefined,
): string {
  return (
    `TransferAuthModule is registered twice for agent \`${agentId}\` at the same base URL: ${registrationLabel(first)} ` +
    `and ${registrationLabel(second)}. Each keeps its own token, logins and schedule. Register it once ` +
    '(`isGlobal: true`) and inject it where needed, or give both one shared `store`.'
  );
}

// AUTH against the service's tokens, and the per-namespace check every key command makes. Deny by
// default: with tokens configured, nothing but AUTH, HELLO (with AUTH), PING-less handshakes and
// QUIT runs before AUTH, and a token may only read or write the namespaces its scopes name.
import { timingSafeEqual } from 'node:crypto';
import { CommandError } from './errors.js';
import { sha256, type Action, type Principal } from './service-port.js';
import type { Session } from './session.js';

export interface AccessRules {
  readonly principals: readonly Principal[];
}

export const authRequired = (rules: AccessRules): boolean => rules.principals.length > 0;

/**
 * `AUTH token` or `AUTH name token`. Every digest is compared with timingSafeEqual and no early
 * exit. A name, when given, must be the token's name (`default` is accepted for any token:
 * clients send it when only a password is configured).
 */
export function authenticate(rules: AccessRules, session: Session, username: string | undefined, password: string): void {
  if (!authRequired(rules)) {
    throw new CommandError('ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?');
  }
  const presented = sha256(password);
  let found: Principal | undefined;
  for (const principal of rules.principals) {
    if (timingSafeEqual(principal.digest, presented) && found === undefined) found = principal;
  }
  if (found === undefined || (username !== undefined && username !== 'default' && username !== found.name)) {
    throw new CommandError('WRONGPASS invalid username-password pair or user is disabled.');
  }
  session.principal = found;
}

/** Throws -NOPERM unless the session may `action` the namespace. */
export function authorize(rules: AccessRules, session: Session, namespace: string, action: Action): void {
  if (!authRequired(rules)) return;
  const { principal } = session;
  if (principal === undefined) throw noAuth();
  if (!principal.can(action, namespace)) {
    throw new CommandError(`NOPERM token ${JSON.stringify(principal.name)} may not ${action} namespace ${JSON.stringify(namespace)}`);
  }
}

export const noAuth = (): CommandError => new CommandError('NOAUTH Authentication required.');

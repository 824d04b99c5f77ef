// Where a front may listen: a non-loopback address needs tokens (without them anyone who can reach
// the port could read and write every key), and a plain token there must be strong
// (token-strength.ts). One rule for every front: HTTP, RESP.
import { InvalidOptionError } from '../errors.js';
import { isLoopbackHost } from './loopback.js';
import { MIN_TOKEN_LENGTH, tokenWeakness } from './token-strength.js';

export { isLoopbackHost } from './loopback.js';

/**
 * Throws unless `host` is loopback or tokens are configured, and, on a non-loopback host, unless
 * the plain token (when one is given) is strong enough. Call it before opening anything.
 */
export function assertListenAllowed(host: string, tokensConfigured: boolean, plainToken?: string): void {
  if (isLoopbackHost(host)) return;
  if (!tokensConfigured) {
    throw new InvalidOptionError(
      `refusing to listen on ${host} without a token: a non-loopback address exposes every key to the network. ` +
        'Configure tokens (--tokens-file or LOCKSTEP_TOKENS, or one full-access token with --token or LOCKSTEP_TOKEN) or listen on 127.0.0.1.',
    );
  }
  const weakness = plainToken === undefined ? undefined : tokenWeakness(plainToken);
  if (weakness !== undefined) throw weakTokenError(host, weakness);
}

export function weakTokenError(host: string, weakness: string): InvalidOptionError {
  return new InvalidOptionError(
    `refusing to listen on ${host} with a weak token: ${weakness}. On a non-loopback address the token needs at least ${MIN_TOKEN_LENGTH} random characters; ` +
      "make one with 'lockstep token create' (256 random bits) and use it with --tokens-file, or LOCKSTEP_TOKEN=$(openssl rand -hex 32).",
  );
}

// Who is calling and what they may do. One middleware identifies the caller by bearer token and
// applies its rate limit; routes then ask `authorize(c, namespace, action)` before touching a
// namespace. Deny by default: every route outside /v1/kv/ but the probes needs the `admin` scope
// (so /metrics and any dashboard or stats route are covered without asking), and a /v1/kv/ route
// that answers without having called authorize() is a bug, turned into a 500 here.
import { timingSafeEqual } from 'node:crypto';
import type { Context, MiddlewareHandler } from 'hono';
import { validateNamespace } from '../keys.js';
import type { ResolvedAppOptions } from './app-options.js';
import { forbidden, rateLimited, unauthorized } from './errors.js';
import { createRateLimiter, type RateLimit } from '../service/rate-limit.js';
import { DASHBOARD_PATHS } from './routes/dashboard.js';
import { sha256, type Action, type Principal } from '../service/token-set.js';

/** Liveness and readiness probes (orchestrators call them without credentials) and the API document: never rate limited. */
export const PUBLIC_PATHS: ReadonlySet<string> = new Set(['/healthz', '/readyz', '/openapi.json']);
// The dashboard's files (DASHBOARD_PATHS) are public too: they hold no data, and a browser cannot
// send a bearer token when it navigates; the page reads /v1/stats (admin) and asks for a token on a 401.
/** Routes under this prefix are per namespace: each must call authorize(). */
export const NAMESPACED_PREFIX = '/v1/kv/';

interface Access {
  /** `undefined` when the app has no tokens: everything is allowed. */
  readonly principal: Principal | undefined;
  readonly required: boolean;
  /** Set by authorize(): the route did check. */
  checked: boolean;
}

declare module 'hono' {
  interface ContextVariableMap {
    lockstepAccess: Access;
  }
}

/**
 * Throws 403 E_FORBIDDEN unless the caller's token may `action` the namespace (400
 * E_INVALID_NAMESPACE first if the name is not a namespace). Every route that reads or writes a
 * namespace calls it, once per namespace it touches, before touching it.
 */
export function authorize(c: Context, namespace: string, action: Action): void {
  validateNamespace(namespace);
  const access = accessOf(c);
  access.checked = true;
  const { principal } = access;
  if (!access.required || principal?.can(action, namespace) === true) return;
  throw forbidden(`token ${JSON.stringify(principal?.name)} may not ${action} namespace ${JSON.stringify(namespace)}`);
}

/** Throws 403 E_FORBIDDEN unless the caller's token has the `admin` scope (service-wide routes). */
export function authorizeAdmin(c: Context): void {
  const access = accessOf(c);
  access.checked = true;
  if (!access.required || access.principal?.admin === true) return;
  throw forbidden(`token ${JSON.stringify(access.principal?.name)} lacks the admin scope this route needs`);
}

export function accessMiddleware(options: ResolvedAppOptions): MiddlewareHandler {
  const { principals } = options;
  const required = principals.length > 0;
  const limiter = createRateLimiter({ maxBuckets: options.rateLimitBuckets, clock: options.clock });

  return async (c, next) => {
    if (PUBLIC_PATHS.has(c.req.path) || DASHBOARD_PATHS.has(c.req.path)) return next();
    const header = c.req.header('Authorization');
    const principal = required && header !== undefined ? identify(header, principals) : undefined;

    // Rate limit before refusing a bad token, so that guessing tokens is throttled as well.
    const limit: RateLimit | false = principal?.rateLimit ?? options.rateLimit;
    if (limit !== false) {
      const bucket = principal === undefined ? `anonymous:${remoteAddress(c) ?? ''}` : `token:${principal.name}`;
      const taken = limiter.take(bucket, limit);
      if (!taken.ok) throw rateLimited(taken.retryAfterMs);
    }
    if (required && principal === undefined) {
      throw unauthorized(header === undefined ? 'this route needs an Authorization: Bearer <token> header' : 'the bearer token is not valid');
    }

    const access: Access = { principal, required, checked: false };
    c.set('lockstepAccess', access);
    const namespaced = c.req.path.startsWith(NAMESPACED_PREFIX);
    if (!namespaced) authorizeAdmin(c);
    await next();
    if (namespaced && required && !access.checked && c.res.status < 400) {
      throw new Error(`${c.req.method} ${c.req.path} answered ${c.res.status} without calling authorize()`);
    }
  };
}

function accessOf(c: Context): Access {
  const access = c.get('lockstepAccess');
  // Only reachable when a route is mounted outside createApp's middleware: fail closed.
  if (access === undefined) throw new Error('authorize() called on a request the access middleware did not see');
  return access;
}

/**
 * The configured token whose digest matches, or undefined. Every digest is compared, with
 * timingSafeEqual and no early exit, so the time taken depends only on how many tokens are
 * configured, never on which one matched or how many bytes of a digest agreed. (A Map keyed by
 * digest would leak timing about the digest of the caller's own guess only, which is safe too:
 * knowing digest bytes does not reveal a 256-bit random token. The scan keeps the argument short.)
 */
function identify(header: string, principals: readonly Principal[]): Principal | undefined {
  const match = /^Bearer +(\S+) *$/i.exec(header);
  if (match?.[1] === undefined) return undefined;
  const presented = sha256(match[1]);
  let found: Principal | undefined;
  for (const principal of principals) {
    if (timingSafeEqual(principal.digest, presented) && found === undefined) found = principal;
  }
  return found;
}

/** The socket's peer address under @hono/node-server; undefined under app.request(). */
function remoteAddress(c: Context): string | undefined {
  const env = c.env as { server?: NodeBindings; incoming?: NodeBindings['incoming'] } | undefined;
  const incoming = env?.server?.incoming ?? env?.incoming;
  return incoming?.socket?.remoteAddress;
}

interface NodeBindings {
  readonly incoming?: { readonly socket?: { readonly remoteAddress?: string } };
}

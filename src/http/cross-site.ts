// No cross-site use: a web page the operator visits must not be able to read or write through the
// service from the operator's browser. Applied to every request before the access check:
// - Host: without tokens, only loopback names and addresses (localhost, 127.0.0.0/8, [::1]) and the
//   configured `allowedHosts`, so that a DNS-rebinding page (Host: evil.example:PORT) is refused.
//   With tokens, Host is checked only when `allowedHosts` is set: the bearer token, which a browser
//   never attaches on its own, is the guard. The probes are exempt (orchestrators address pods by IP).
// - Origin: when present, its host and port must be the request's Host (the service's own origin;
//   the scheme is not compared, since a TLS-terminating proxy forwards https as http). `null` is
//   refused. So is a browser's `Sec-Fetch-Site: cross-site | same-site`, except a navigation to the
//   dashboard page (a link to it from elsewhere).
// - Content-Type: a request with a body needs a JSON type (application/json or +json), a missing
//   one included, and a JSON type is never a "simple" request: a browser must send a preflight
//   (OPTIONS), which the Origin rule refuses, with no CORS header granted.
import type { Context, MiddlewareHandler } from 'hono';
import { InvalidOptionError } from '../errors.js';
import { crossOrigin, hostNotAllowed, unsupportedMediaType } from './errors.js';
import { isLoopbackHost } from '../service/loopback.js';

export interface CrossSiteOptions {
  /** Host names or addresses accepted besides loopback, normalised (see resolveAllowedHosts). */
  readonly allowedHosts: readonly string[] | undefined;
  /** Tokens are configured. */
  readonly tokensRequired: boolean;
}

/** Paths whose Host is not checked: liveness and readiness carry no data. */
const PROBE_PATHS: ReadonlySet<string> = new Set(['/healthz', '/readyz']);

export function crossSiteGuard(options: CrossSiteOptions, dashboardPaths: ReadonlySet<string>): MiddlewareHandler {
  const allowed = new Set(options.allowedHosts ?? []);
  const checkHost = !options.tokensRequired || options.allowedHosts !== undefined;

  return async (c, next) => {
    const host = requestHost(c);
    if (checkHost && !PROBE_PATHS.has(c.req.path)) {
      const name = host === undefined ? undefined : hostnameOf(host);
      if (name === undefined || !(isLoopbackHost(name) || allowed.has(name))) {
        throw hostNotAllowed(
          `Host ${JSON.stringify((host ?? '').slice(0, 100))} is not this service's: only loopback names and the allowed hosts (--allowed-hosts) are served`,
        );
      }
    }

    const origin = c.req.header('Origin');
    if (origin !== undefined && !sameHost(origin, host)) {
      throw crossOrigin(`requests from another origin (${JSON.stringify(origin.slice(0, 100))}) are refused; no CORS is granted`);
    }
    const site = c.req.header('Sec-Fetch-Site')?.toLowerCase();
    if (site === 'cross-site' || site === 'same-site') {
      const dashboardNavigation = c.req.method === 'GET' && c.req.header('Sec-Fetch-Mode') === 'navigate' && dashboardPaths.has(c.req.path);
      if (!dashboardNavigation) throw crossOrigin(`requests the browser marks Sec-Fetch-Site: ${site} are refused`);
    }

    const contentType = c.req.header('Content-Type');
    if (contentType !== undefined) {
      if (!isJsonMediaType(contentType)) {
        throw unsupportedMediaType(`the body must be JSON (Content-Type: application/json), got ${JSON.stringify(contentType.slice(0, 64))}`);
      }
    } else if (hasBody(c)) {
      throw unsupportedMediaType('a request with a body needs Content-Type: application/json');
    }
    await next();
  };
}

/** application/json or a +json type, parameters allowed. Neither is a CORS-safelisted type. */
export function isJsonMediaType(contentType: string): boolean {
  const mediaType = (contentType.split(';')[0] ?? '').trim().toLowerCase();
  return mediaType === 'application/json' || (mediaType.startsWith('application/') && mediaType.endsWith('+json'));
}

/** The allow-list as given (names or addresses, no port), validated and normalised like a Host. */
export function resolveAllowedHosts(hosts: readonly string[] | undefined, name = 'allowedHosts'): readonly string[] | undefined {
  if (hosts === undefined) return undefined;
  if (!Array.isArray(hosts)) throw new InvalidOptionError(`${name} must be an array of host names`);
  return Object.freeze(
    hosts.map((entry) => {
      const raw = typeof entry === 'string' ? entry.trim() : '';
      // A bare IPv6 address is written without brackets in a list; a Host header has them.
      const parsed = parseHost(raw.includes(':') && !raw.startsWith('[') ? `[${raw}]` : raw);
      if (parsed === undefined || parsed.port !== '' || raw.includes(']:') || raw.includes('*')) {
        throw new InvalidOptionError(`${name}: ${JSON.stringify(entry)} is not a host name or address (no scheme, port or wildcard), e.g. lockstep.internal or 10.0.0.5`);
      }
      return parsed.hostname;
    }),
  );
}

/** The Host header; under app.request() (no socket) the request URL's host. */
function requestHost(c: Context): string | undefined {
  return c.req.header('Host') ?? new URL(c.req.url).host;
}

/** The host name of a Host value (`name`, `name:port`, `[v6]:port`), normalised as a browser would (lower case, IPv4 numbers, IPv6 in brackets); undefined when malformed. */
function hostnameOf(host: string): string | undefined {
  return parseHost(host)?.hostname;
}

function parseHost(host: string): { hostname: string; port: string } | undefined {
  // Only a host and a port: no user info, path, query or fragment slipped in.
  if (host === '' || /[/?#@\\\s]/.test(host)) return undefined;
  try {
    const { hostname, port } = new URL(`http://${host}`);
    return hostname === '' ? undefined : { hostname, port };
  } catch {
    return undefined;
  }
}

/** Whether the Origin names the same host and port as the Host header. */
function sameHost(origin: string, host: string | undefined): boolean {
  if (host === undefined) return false;
  try {
    const from = new URL(origin);
    if (from.protocol !== 'http:' && from.protocol !== 'https:') return false;
    const to = new URL(`${from.protocol}//${host}`);
    return from.host === to.host;
  } catch {
    return false;
  }
}

/**
 * Whether the request carries a body. On a socket, HTTP/1.1 frames a body by Content-Length or
 * Transfer-Encoding, nothing else; under app.request() the Request object knows.
 */
function hasBody(c: Context): boolean {
  const length = c.req.header('Content-Length');
  if (length !== undefined) return length.trim() !== '0';
  if (c.req.header('Transfer-Encoding') !== undefined) return true;
  const env = c.env as { incoming?: unknown } | undefined;
  return env?.incoming === undefined && c.req.raw.body !== null;
}

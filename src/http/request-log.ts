// Request ids and one structured log line per request. The id comes from the caller's
// X-Request-Id when it is a short, plain token (so a trace spans the proxy and us), else a fresh
// UUID; it is sent back, set on the context for every later log line of the request, and kept
// out of values: the line names method, path, status, duration and namespace, never a body,
// a header value or a token.
import { randomUUID } from 'node:crypto';
import type { Context, MiddlewareHandler } from 'hono';
import type { Logger } from 'pino';
import type { Lifecycle } from './lifecycle.js';

declare module 'hono' {
  interface ContextVariableMap {
    /** The request id of this request (X-Request-Id). */
    requestId: string;
  }
}

export const REQUEST_ID_HEADER = 'X-Request-Id';
/** Letters, digits and `._:-`, at most 64: enough for UUIDs, ULIDs and trace ids, nothing to inject. */
const SANE_ID = /^[A-Za-z0-9._:-]{1,64}$/;
/** Paths are logged, but a hostile client could send megabytes of path: cut it. */
const MAX_LOGGED_PATH = 256;
const KV_PREFIX = '/v1/kv/';

export function requestIdOf(header: string | undefined): string {
  return header !== undefined && SANE_ID.test(header) ? header : randomUUID();
}

/** The namespace a /v1/kv path addresses (`/v1/kv/NS/…` or `/v1/kv/NS:batchGet`), when it has one. */
export function namespaceOfPath(path: string): string | undefined {
  if (!path.startsWith(KV_PREFIX)) return undefined;
  const rest = path.slice(KV_PREFIX.length);
  const end = rest.search(/[/:]/);
  const raw = end === -1 ? rest : rest.slice(0, end);
  // Only a plain namespace is worth a field of its own; anything else is in `path` already.
  return /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/.test(raw) ? raw : undefined;
}

export function requestLog(logger: Logger, lifecycle: Lifecycle): MiddlewareHandler {
  return async (c, next) => {
    const id = requestIdOf(c.req.header(REQUEST_ID_HEADER));
    c.set('requestId', id);
    c.header(REQUEST_ID_HEADER, id);
    // Keep-alive clients would hold the drain open: tell them to reconnect (elsewhere).
    if (lifecycle.draining) c.header('Connection', 'close');
    const started = performance.now();
    lifecycle.requestStarted();
    try {
      await next();
    } finally {
      lifecycle.requestFinished();
    }
    if (logger.isLevelEnabled('info')) logRequest(logger, c, id, performance.now() - started);
  };
}

function logRequest(logger: Logger, c: Context, id: string, durationMs: number): void {
  const path = c.req.path;
  const namespace = namespaceOfPath(path);
  logger.info(
    {
      reqId: id,
      method: c.req.method,
      path: path.length > MAX_LOGGED_PATH ? `${path.slice(0, MAX_LOGGED_PATH)}…` : path,
      status: c.res.status,
      durationMs: Math.round(durationMs * 100) / 100,
      ...(namespace === undefined ? {} : { namespace }),
    },
    'request',
  );
}

// The REST face of a LockstepService as a Hono app, with no listen(): tests drive it through
// app.request(), and server.ts puts it on a socket.
import { createHash, timingSafeEqual } from 'node:crypto';
import { Hono, type Context } from 'hono';
import { pino, type Logger } from 'pino';
import { InvalidOptionError } from '../errors.js';
import { notFound, toErrorResponse, unauthorized } from './errors.js';
import { createLifecycle, type Lifecycle } from './lifecycle.js';
import { requestLog } from './request-log.js';
import { kvRoutes } from './routes/kv.js';
import { opsRoutes, PUBLIC_PATHS } from './routes/ops.js';
import type { LockstepService } from './service.js';

export interface AppOptions {
  /** When set, every route but /healthz and /readyz needs `Authorization: Bearer <token>`. */
  token?: string;
  /** Largest request body, in bytes. @default the service's maxValueBytes + 64 KiB (room for JSON whitespace and escapes) */
  bodyLimitBytes?: number;
  /**
   * Called with errors that map to a 500, and the request's id.
   * @default logs the error with the request id: to `logger` when one is given, else to stderr
   */
  onUnexpectedError?: (error: unknown, request: Request, requestId: string) => void;
  /** Where the one-line-per-request JSON logs go (a pino logger). @default silent */
  logger?: Logger;
  /** Shutdown state: `beginDrain()` turns /readyz to 503 `draining`. @default a fresh one */
  lifecycle?: Lifecycle;
}

const BODY_SLACK_BYTES = 64 * 1024;

/** The token digest each app was created with, so that server.ts can tell whether an app is protected. */
const tokenDigests = new WeakMap<object, Buffer>();

export function createApp(service: LockstepService, options: AppOptions = {}): Hono {
  const { token } = options;
  if (token !== undefined && token.length === 0) throw new InvalidOptionError('token must not be empty');
  const bodyLimitBytes = options.bodyLimitBytes ?? service.maxValueBytes + BODY_SLACK_BYTES;
  if (!Number.isSafeInteger(bodyLimitBytes) || bodyLimitBytes <= 0) {
    throw new InvalidOptionError(`bodyLimitBytes must be a positive integer (got ${JSON.stringify(bodyLimitBytes)})`);
  }
  const logger = options.logger ?? pino({ level: 'silent' });
  const lifecycle = options.lifecycle ?? createLifecycle();
  const onUnexpectedError =
    options.onUnexpectedError ?? (options.logger === undefined ? logUnexpected : logUnexpectedTo(options.logger));

  const app = new Hono();
  // First, so that every answer (401s and 404s included) carries an id and is logged.
  app.use('*', requestLog(logger, lifecycle));
  app.onError((error, c) => {
    const response = toErrorResponse(error);
    if (response.unexpected) onUnexpectedError(error, c.req.raw, c.get('requestId'));
    return c.json(response.body, response.status, response.headers);
  });
  app.notFound((c) => {
    const { status, body, headers } = toErrorResponse(notFound(`no route for ${c.req.method} ${c.req.path}`));
    return c.json(body, status, headers);
  });

  if (token !== undefined) {
    const expected = digest(token);
    tokenDigests.set(app, expected);
    app.use('*', async (c, next) => {
      // Health probes (load balancers, orchestrators) carry no credentials and learn only up/down.
      if (!PUBLIC_PATHS.has(c.req.path)) checkBearer(c, expected);
      await next();
    });
  }

  app.route('/', opsRoutes(service, lifecycle));
  app.route('/v1/kv', kvRoutes(service, { bodyLimitBytes }));
  return app;
}

/** Whether `app` was created by createApp with exactly this token. */
export function isProtectedBy(app: object, token: string): boolean {
  const expected = tokenDigests.get(app);
  return expected !== undefined && timingSafeEqual(expected, digest(token));
}

function checkBearer(c: Context, expected: Buffer): void {
  const header = c.req.header('Authorization');
  if (header === undefined) throw unauthorized('this route needs an Authorization: Bearer <token> header');
  const match = /^Bearer +(\S+) *$/i.exec(header);
  // Digests have equal lengths, so the comparison time does not depend on the token sent.
  if (match?.[1] === undefined || !timingSafeEqual(digest(match[1]), expected)) {
    throw unauthorized('the bearer token is not valid');
  }
}

function digest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

function logUnexpected(error: unknown, request: Request, requestId: string): void {
  const detail = error instanceof Error ? (error.stack ?? error.message) : String(error);
  console.error(`lockstep: unexpected error on ${request.method} ${new URL(request.url).pathname} (request ${requestId}): ${detail}`);
}

function logUnexpectedTo(logger: Logger): (error: unknown, request: Request, requestId: string) => void {
  return (error, request, requestId) => {
    logger.error({ reqId: requestId, method: request.method, path: new URL(request.url).pathname, err: error }, 'unexpected error');
  };
}

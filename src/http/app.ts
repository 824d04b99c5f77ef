// The REST face of a LockstepService as a Hono app, with no listen(): tests drive it through
// app.request(), and server.ts puts it on a socket.
import { createHash, timingSafeEqual } from 'node:crypto';
import { Hono, type Context } from 'hono';
import { InvalidOptionError } from '../errors.js';
import { methodNotAllowed, notFound, toErrorResponse, unauthorized } from './errors.js';
import { openApiDocument } from './openapi.js';
import { batchRoutes } from './routes/batch.js';
import { kvRoutes } from './routes/kv.js';
import { opsRoutes } from './routes/ops.js';
import type { LockstepService } from './service.js';

export interface AppOptions {
  /** When set, every route but /healthz needs `Authorization: Bearer <token>`. */
  token?: string;
  /** Largest request body, in bytes. @default the service's maxValueBytes + 64 KiB (room for JSON whitespace and escapes) */
  bodyLimitBytes?: number;
  /** Called with errors that map to a 500 (or to an E_INTERNAL batch item). @default logs the stack to stderr */
  onUnexpectedError?: (error: unknown, request: Request) => void;
  /** Most items in one :batchGet or :batchPut request; more is a 413 E_BATCH_TOO_LARGE. @default 100 */
  maxBatchItems?: number;
}

const BODY_SLACK_BYTES = 64 * 1024;
const DEFAULT_MAX_BATCH_ITEMS = 100;

/** The token digest each app was created with, so that server.ts can tell whether an app is protected. */
const tokenDigests = new WeakMap<object, Buffer>();

export function createApp(service: LockstepService, options: AppOptions = {}): Hono {
  const { token } = options;
  if (token !== undefined && token.length === 0) throw new InvalidOptionError('token must not be empty');
  const bodyLimitBytes = options.bodyLimitBytes ?? service.maxValueBytes + BODY_SLACK_BYTES;
  if (!Number.isSafeInteger(bodyLimitBytes) || bodyLimitBytes <= 0) {
    throw new InvalidOptionError(`bodyLimitBytes must be a positive integer (got ${JSON.stringify(bodyLimitBytes)})`);
  }
  const onUnexpectedError = options.onUnexpectedError ?? logUnexpected;
  const maxBatchItems = options.maxBatchItems ?? DEFAULT_MAX_BATCH_ITEMS;
  if (!Number.isSafeInteger(maxBatchItems) || maxBatchItems <= 0) {
    throw new InvalidOptionError(`maxBatchItems must be a positive integer (got ${JSON.stringify(maxBatchItems)})`);
  }

  const app = new Hono();
  app.onError((error, c) => {
    const response = toErrorResponse(error);
    if (response.unexpected) onUnexpectedError(error, c.req.raw);
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
      if (c.req.path !== '/healthz') checkBearer(c, expected);
      await next();
    });
  }

  app.get('/openapi.json', (c) => c.json(openApiDocument, 200, { 'Cache-Control': 'no-cache' }));
  app.all('/openapi.json', (c) => { throw methodNotAllowed(c.req.method, ['GET', 'HEAD']); });
  app.route('/', opsRoutes(service));
  app.route('/v1/kv', batchRoutes(service, { bodyLimitBytes, maxBatchItems, onUnexpectedError }));
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

function logUnexpected(error: unknown, request: Request): void {
  const detail = error instanceof Error ? (error.stack ?? error.message) : String(error);
  console.error(`lockstep: unexpected error on ${request.method} ${new URL(request.url).pathname}: ${detail}`);
}

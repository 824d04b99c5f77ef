// The REST face of a LockstepService as a Hono app, with no listen(): tests drive it through
// app.request(), and server.ts puts it on a socket.
import { timingSafeEqual } from 'node:crypto';
import { Hono } from 'hono';
import { accessMiddleware } from './access.js';
import { ReplyBudget, type AnswerBudgetView } from './answer-budget.js';
import type { BodyBudgetView } from './body-budget.js';
import { crossSiteGuard } from './cross-site.js';
import { resolveAppOptions, type AppOptions } from './app-options.js';
import { methodNotAllowed, notFound, toErrorResponse } from './errors.js';
import { openApiDocument } from './openapi.js';
import { batchRoutes } from './routes/batch.js';
import { DASHBOARD_PATHS, dashboardRoutes } from './routes/dashboard.js';
import { requestLog } from './request-log.js';
import { kvRoutes } from './routes/kv.js';
import { opsRoutes } from './routes/ops.js';
import type { LockstepService } from '../service/service.js';
import { sha256, type Principal } from '../service/token-set.js';

export type { AppOptions } from './app-options.js';

/** The tokens each app was created with, so that server.ts can tell whether an app is protected. */
const appPrincipals = new WeakMap<object, readonly Principal[]>();
/** Why an app's plain token is too weak for a non-loopback address (server.ts refuses it there). */
const appTokenWeakness = new WeakMap<object, string>();
/** Each app's answer budget (answer-budget.ts), shared by every connection of every listen() of the app. */
const appAnswerBudgets = new WeakMap<object, ReplyBudget>();
/** Each app's body budget (body-budget.ts): request bodies being read, every connection together. */
const appBodyBudgets = new WeakMap<object, ReplyBudget>();

export function createApp(service: LockstepService, options: AppOptions = {}): Hono {
  const resolved = resolveAppOptions(options, service.maxValueBytes);
  const { onUnexpectedError } = resolved;

  const app = new Hono();
  const answers = new ReplyBudget(resolved.maxTotalAnswerBytes);
  appAnswerBudgets.set(app, answers);
  const bodies = new ReplyBudget(resolved.maxTotalBodyBytes);
  appBodyBudgets.set(app, bodies);
  appPrincipals.set(app, resolved.principals);
  if (resolved.tokenWeakness !== undefined) appTokenWeakness.set(app, resolved.tokenWeakness);
  // First, so that every answer (401s and 404s included) carries an id and is logged.
  app.use('*', requestLog(resolved.logger, resolved.lifecycle));
  app.onError((error, c) => {
    const response = toErrorResponse(error);
    if (response.unexpected) onUnexpectedError(error, c.req.raw, c.get('requestId'));
    return c.json(response.body, response.status, response.headers);
  });
  app.notFound((c) => {
    const { status, body, headers } = toErrorResponse(notFound(`no route for ${c.req.method} ${c.req.path}`));
    return c.json(body, status, headers);
  });

  // Before anything reads the request: no cross-site use (Host, Origin, Content-Type).
  app.use('*', crossSiteGuard({ allowedHosts: resolved.allowedHosts, tokensRequired: resolved.principals.length > 0 }, DASHBOARD_PATHS));
  // Before every route: who is calling, their rate limit, and admin for service-wide routes.
  app.use('*', accessMiddleware(resolved));
  app.get('/openapi.json', (c) => c.json(openApiDocument, 200, { 'Cache-Control': 'no-cache' }));
  app.all('/openapi.json', (c) => { throw methodNotAllowed(c.req.method, ['GET', 'HEAD']); });
  app.route('/', opsRoutes(service, resolved.lifecycle));
  app.route('/', dashboardRoutes());
  const { bodyLimitBytes, maxJsonDepth, maxBatchItems } = resolved;
  app.route('/v1/kv', batchRoutes(service, { bodyLimitBytes, maxJsonDepth, maxBatchItems, onUnexpectedError, answers, bodies }));
  app.route('/v1/kv', kvRoutes(service, { bodyLimitBytes, maxJsonDepth, answers, bodies }));
  return app;
}

/** The bytes that `app`'s answers hold now, not yet handed to the kernel, and its maxTotalAnswerBytes; undefined for an app createApp did not make. */
export function answerBudgetOf(app: object): AnswerBudgetView | undefined {
  const budget = appAnswerBudgets.get(app);
  return budget === undefined ? undefined : { held: budget.held, limit: budget.limit };
}

/** The bytes of request bodies `app` is reading now, and its maxTotalBodyBytes; undefined for an app createApp did not make. */
export function bodyBudgetOf(app: object): BodyBudgetView | undefined {
  const budget = appBodyBudgets.get(app);
  return budget === undefined ? undefined : { held: budget.held, limit: budget.limit };
}

/** Whether `app` was created by createApp with at least one token (a token set or `token`). */
export function requiresToken(app: object): boolean {
  return (appPrincipals.get(app)?.length ?? 0) > 0;
}

/** Why the plain token `app` was created with is too weak for a non-loopback address, if it is. */
export function weakTokenOf(app: object): string | undefined {
  return appTokenWeakness.get(app);
}

/** Whether `app` was created by createApp with this token among its tokens. */
export function isProtectedBy(app: object, token: string): boolean {
  const digest = sha256(token);
  return (appPrincipals.get(app) ?? []).some((principal) => timingSafeEqual(principal.digest, digest));
}

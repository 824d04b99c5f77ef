// createApp's options: access (tokens, allowed hosts) and limits, resolved, validated and frozen once.
import { pino, type Logger } from 'pino';
import { systemClock } from '../clock.js';
import { InvalidOptionError } from '../errors.js';
import type { Clock } from '../types.js';
import { resolveAllowedHosts } from './cross-site.js';
import { createLifecycle, type Lifecycle } from './lifecycle.js';
import { resolveRateLimit, type RateLimit } from '../service/rate-limit.js';
import { assertDistinct, fullAccessPrincipal, resolveTokenFile, type Principal, type TokenFile } from '../service/token-set.js';
import { tokenWeakness } from '../service/token-strength.js';

export interface AppOptions {
  /**
   * One full-access token (every namespace, read and write, admin), as `--token` sets it. Hashed
   * at once; the plain text is not kept. May be combined with `tokens`.
   */
  token?: string;
  /**
   * Scoped tokens, the token file's value `{"tokens": [{name, sha256, scopes, rateLimit?}]}`.
   * With `token` or `tokens`, every route but /healthz and /readyz needs `Authorization: Bearer`.
   */
  tokens?: TokenFile;
  /**
   * Host names or addresses (no port) the service answers to besides loopback (localhost,
   * 127.0.0.0/8, [::1]); any other Host is a 403 E_HOST_NOT_ALLOWED (DNS rebinding). With tokens,
   * Host is not checked unless this is set. See cross-site.ts. @default none
   */
  allowedHosts?: readonly string[];
  /** Largest request body, in bytes (413 E_BODY_TOO_LARGE). @default the service's maxValueBytes + 64 KiB (room for JSON whitespace and escapes) */
  bodyLimitBytes?: number;
  /** Deepest nesting of arrays and objects in a JSON body (400 E_JSON_TOO_DEEP). @default 32 */
  maxJsonDepth?: number;
  /** Most items in one :batchGet or :batchPut request; more is a 413 E_BATCH_TOO_LARGE. @default 100 */
  maxBatchItems?: number;
  /**
   * Bytes that answers carrying values (GET of a key, its /state, :batchGet) may hold across every
   * connection together, from the read until the socket has handed them to the kernel; a request
   * that would hold more is a 503 E_BUSY with Retry-After (answer-budget.ts). At least the largest
   * single answer the other limits allow: max(maxBatchItems, 2) × (the service's maxValueBytes + 4 KiB).
   * @default 256 MiB, or that least value when it is larger
   */
  maxTotalAnswerBytes?: number;
  /**
   * Bytes of request bodies being read across every connection together, from the request's head
   * (a Content-Length counts whole) or each chunk's arrival until the route is done with the request;
   * a body that would go over is a 503 E_BUSY with Retry-After, the connection closed (body-budget.ts).
   * At least `bodyLimitBytes`. @default 256 MiB, or `bodyLimitBytes` when it is larger
   */
  maxTotalBodyBytes?: number;
  /**
   * Requests per token (anonymous callers: per remote address), for tokens without their own
   * `rateLimit` (429 E_RATE_LIMITED with Retry-After). @default false (no limit)
   */
  rateLimit?: RateLimit | false;
  /** Rate-limit buckets kept (least recently used are dropped, and come back full). @default 10000 */
  rateLimitBuckets?: number;
  /** Time for the rate limiter, in ms. @default systemClock */
  clock?: Clock;
  /**
   * Called with errors that map to a 500 (or an E_INTERNAL batch item), and the request's id.
   * @default logs the error with the request id: to `logger` when one is given, else to stderr
   */
  onUnexpectedError?: UnexpectedErrorHandler;
  /** Where the one-line-per-request JSON logs go (a pino logger). @default silent */
  logger?: Logger;
  /** Shutdown state: `beginDrain()` turns /readyz to 503 `draining`. @default a fresh one */
  lifecycle?: Lifecycle;
}

export type UnexpectedErrorHandler = (error: unknown, request: Request, requestId: string) => void;

export interface ResolvedAppOptions {
  /** Empty: no tokens configured, every route is open (loopback only, server.ts sees to it). */
  readonly principals: readonly Principal[];
  /** Why the plain `token` would be too weak on a non-loopback address (server.ts refuses it there). */
  readonly tokenWeakness: string | undefined;
  readonly allowedHosts: readonly string[] | undefined;
  readonly bodyLimitBytes: number;
  readonly maxJsonDepth: number;
  readonly maxBatchItems: number;
  readonly maxTotalAnswerBytes: number;
  readonly maxTotalBodyBytes: number;
  readonly rateLimit: RateLimit | false;
  readonly rateLimitBuckets: number;
  readonly clock: Clock;
  readonly onUnexpectedError: UnexpectedErrorHandler;
  readonly logger: Logger;
  readonly lifecycle: Lifecycle;
}

const BODY_SLACK_BYTES = 64 * 1024;
/**
 * Room beside a value in one answer item: the key (512 UTF-8 bytes at most, up to 6 characters each
 * when JSON escapes it), the namespace, the version and the field names.
 */
export const ANSWER_ITEM_SLACK_BYTES = 4096;
const DEFAULT_MAX_TOTAL_ANSWER_BYTES = 256 * 1024 * 1024;
const DEFAULT_MAX_TOTAL_BODY_BYTES = 256 * 1024 * 1024;

export function resolveAppOptions(options: AppOptions, maxValueBytes: number): ResolvedAppOptions {
  const maxBatchItems = positiveInteger(options.maxBatchItems ?? 100, 'maxBatchItems');
  const maxTotalAnswerBytes = resolveMaxTotalAnswerBytes(options.maxTotalAnswerBytes, maxBatchItems, maxValueBytes);
  const bodyLimitBytes = positiveInteger(options.bodyLimitBytes ?? maxValueBytes + BODY_SLACK_BYTES, 'bodyLimitBytes');
  const maxTotalBodyBytes = resolveMaxTotalBodyBytes(options.maxTotalBodyBytes, bodyLimitBytes);
  const principals: Principal[] = [];
  if (options.token !== undefined) principals.push(fullAccessPrincipal(options.token));
  if (options.tokens !== undefined) principals.push(...resolveTokenFile(options.tokens, 'tokens'));
  assertDistinct(principals, 'tokens');
  return Object.freeze({
    principals: Object.freeze(principals),
    tokenWeakness: options.token === undefined ? undefined : tokenWeakness(options.token),
    allowedHosts: resolveAllowedHosts(options.allowedHosts),
    bodyLimitBytes,
    maxJsonDepth: positiveInteger(options.maxJsonDepth ?? 32, 'maxJsonDepth'),
    maxBatchItems,
    maxTotalAnswerBytes,
    maxTotalBodyBytes,
    rateLimit: resolveRateLimit(options.rateLimit ?? false, 'rateLimit'),
    rateLimitBuckets: positiveInteger(options.rateLimitBuckets ?? 10_000, 'rateLimitBuckets'),
    clock: options.clock ?? systemClock,
    onUnexpectedError: options.onUnexpectedError ?? (options.logger === undefined ? logUnexpected : logUnexpectedTo(options.logger)),
    logger: options.logger ?? pino({ level: 'silent' }),
    lifecycle: options.lifecycle ?? createLifecycle(),
  });
}

/** The largest single answer (a full :batchGet, or a /state with two values) must fit in the budget, or it could never be answered. */
function resolveMaxTotalAnswerBytes(value: number | undefined, maxBatchItems: number, maxValueBytes: number): number {
  const largestAnswer = Math.max(maxBatchItems, 2) * (maxValueBytes + ANSWER_ITEM_SLACK_BYTES);
  if (value === undefined) return Math.max(DEFAULT_MAX_TOTAL_ANSWER_BYTES, largestAnswer);
  positiveInteger(value, 'maxTotalAnswerBytes');
  if (value < largestAnswer) {
    throw new InvalidOptionError(
      `maxTotalAnswerBytes (${value}) must be at least the largest single answer, max(maxBatchItems, 2) × (maxValueBytes + ${ANSWER_ITEM_SLACK_BYTES}) = ${largestAnswer} (maxBatchItems ${maxBatchItems}, maxValueBytes ${maxValueBytes})`,
    );
  }
  return value;
}

/** The largest body the per-request limit lets in must fit in the budget, or it could never be read. */
function resolveMaxTotalBodyBytes(value: number | undefined, bodyLimitBytes: number): number {
  if (value === undefined) return Math.max(DEFAULT_MAX_TOTAL_BODY_BYTES, bodyLimitBytes);
  positiveInteger(value, 'maxTotalBodyBytes');
  if (value < bodyLimitBytes) {
    throw new InvalidOptionError(`maxTotalBodyBytes (${value}) must be at least bodyLimitBytes (${bodyLimitBytes}), the largest single request body`);
  }
  return value;
}

function positiveInteger(value: number, name: string): number {
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw new InvalidOptionError(`${name} must be a positive integer (got ${JSON.stringify(value)})`);
  }
  return value;
}

function logUnexpected(error: unknown, request: Request, requestId: string): void {
  const detail = error instanceof Error ? (error.stack ?? error.message) : String(error);
  console.error(`lockstep: unexpected error on ${request.method} ${new URL(request.url).pathname} (request ${requestId}): ${detail}`);
}

function logUnexpectedTo(logger: Logger): UnexpectedErrorHandler {
  return (error, request, requestId) => {
    logger.error({ reqId: requestId, method: request.method, path: new URL(request.url).pathname, err: error }, 'unexpected error');
  };
}

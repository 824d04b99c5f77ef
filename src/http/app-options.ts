// createApp's options: access (tokens) and limits, resolved, validated and frozen once.
import { systemClock } from '../clock.js';
import { InvalidOptionError } from '../errors.js';
import type { Clock } from '../types.js';
import { resolveRateLimit, type RateLimit } from './rate-limit.js';
import { assertDistinct, fullAccessPrincipal, resolveTokenFile, type Principal, type TokenFile } from './token-set.js';

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
  /** Largest request body, in bytes (413 E_BODY_TOO_LARGE). @default the service's maxValueBytes + 64 KiB (room for JSON whitespace and escapes) */
  bodyLimitBytes?: number;
  /** Deepest nesting of arrays and objects in a JSON body (400 E_JSON_TOO_DEEP). @default 32 */
  maxJsonDepth?: number;
  /** Most items in one :batchGet or :batchPut request; more is a 413 E_BATCH_TOO_LARGE. @default 100 */
  maxBatchItems?: number;
  /**
   * Requests per token (anonymous callers: per remote address), for tokens without their own
   * `rateLimit` (429 E_RATE_LIMITED with Retry-After). @default false (no limit)
   */
  rateLimit?: RateLimit | false;
  /** Rate-limit buckets kept (least recently used are dropped, and come back full). @default 10000 */
  rateLimitBuckets?: number;
  /** Time for the rate limiter, in ms. @default systemClock */
  clock?: Clock;
  /** Called with errors that map to a 500. @default logs the stack to stderr */
  onUnexpectedError?: (error: unknown, request: Request) => void;
}

export interface ResolvedAppOptions {
  /** Empty: no tokens configured, every route is open (loopback only, server.ts sees to it). */
  readonly principals: readonly Principal[];
  readonly bodyLimitBytes: number;
  readonly maxJsonDepth: number;
  readonly maxBatchItems: number;
  readonly rateLimit: RateLimit | false;
  readonly rateLimitBuckets: number;
  readonly clock: Clock;
  readonly onUnexpectedError: (error: unknown, request: Request) => void;
}

const BODY_SLACK_BYTES = 64 * 1024;

export function resolveAppOptions(options: AppOptions, maxValueBytes: number): ResolvedAppOptions {
  const principals: Principal[] = [];
  if (options.token !== undefined) principals.push(fullAccessPrincipal(options.token));
  if (options.tokens !== undefined) principals.push(...resolveTokenFile(options.tokens, 'tokens'));
  assertDistinct(principals, 'tokens');
  return Object.freeze({
    principals: Object.freeze(principals),
    bodyLimitBytes: positiveInteger(options.bodyLimitBytes ?? maxValueBytes + BODY_SLACK_BYTES, 'bodyLimitBytes'),
    maxJsonDepth: positiveInteger(options.maxJsonDepth ?? 32, 'maxJsonDepth'),
    maxBatchItems: positiveInteger(options.maxBatchItems ?? 100, 'maxBatchItems'),
    rateLimit: resolveRateLimit(options.rateLimit ?? false, 'rateLimit'),
    rateLimitBuckets: positiveInteger(options.rateLimitBuckets ?? 10_000, 'rateLimitBuckets'),
    clock: options.clock ?? systemClock,
    onUnexpectedError: options.onUnexpectedError ?? logUnexpected,
  });
}

function positiveInteger(value: number, name: string): number {
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw new InvalidOptionError(`${name} must be a positive integer (got ${JSON.stringify(value)})`);
  }
  return value;
}

function logUnexpected(error: unknown, request: Request): void {
  const detail = error instanceof Error ? (error.stack ?? error.message) : String(error);
  console.error(`lockstep: unexpected error on ${request.method} ${new URL(request.url).pathname}: ${detail}`);
}

// Error → HTTP status. Every error response is JSON `{"error":{"code","message"}}`; bad input is a
// 4xx with the error's stable code, an unavailable dependency a 503, and anything unexpected a
// 500 `E_INTERNAL` that carries no message or stack from inside the process.
import {
  CacheError,
  CacheUnavailableError,
  CacheWriteError,
  ClosedError,
  InvalidKeyError,
  InvalidNamespaceError,
  InvalidOptionError,
  InvalidValueError,
  KeyTooLongError,
  LockstepError,
  PreconditionFailedError,
  StoreOutcomeUnknownError,
  StoreReadError,
  StoreWriteError,
  ValueTooLargeError,
} from '../errors.js';

/** A status code this service answers with. */
export type ErrorStatus = 400 | 401 | 403 | 404 | 405 | 412 | 413 | 415 | 429 | 500 | 503;

/** An error that belongs to HTTP itself (bad JSON, unknown route, missing token …), not to the engine. */
export class HttpError extends Error {
  constructor(
    readonly status: ErrorStatus,
    readonly code: string,
    message: string,
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

export interface ErrorBody {
  readonly error: {
    readonly code: string;
    readonly message: string;
    /** E_CACHE_WRITE: the version the store committed. */
    readonly committedVersion?: number;
    /** E_PRECONDITION_FAILED: the key's live version (0 when it does not exist). */
    readonly currentVersion?: number;
  };
}

export interface ErrorResponse {
  readonly status: ErrorStatus;
  readonly body: ErrorBody;
  readonly headers: Readonly<Record<string, string>>;
  /** True when the error was not one we expected: the caller should log it. */
  readonly unexpected: boolean;
}

type LockstepErrorClass = abstract new (...args: never[]) => LockstepError;

/** Engine errors by status, most specific first. Errors not listed here are unexpected (500). */
const STATUS_OF: ReadonlyArray<readonly [LockstepErrorClass, ErrorStatus]> = [
  [KeyTooLongError, 400],
  [InvalidKeyError, 400],
  [InvalidNamespaceError, 400],
  [InvalidValueError, 400],
  // Per-request options (X-TTL-Ms); the service's own options are validated when it is created.
  [InvalidOptionError, 400],
  [ValueTooLargeError, 413],
  // The caller's If-Match / If-None-Match (or ifVersion / ifAbsent in a batch) did not hold.
  [PreconditionFailedError, 412],
  [StoreWriteError, 503],
  [StoreReadError, 503],
  [StoreOutcomeUnknownError, 503],
  [CacheUnavailableError, 503],
  [CacheWriteError, 503],
  // A cache call failed or timed out where the engine does not fall back to the store (inspect).
  [CacheError, 503],
  // The service is shutting down.
  [ClosedError, 503],
];

/**
 * The client went away while its body was still arriving (node's `aborted` ECONNRESET, as read by a
 * chunked upload's body limit): its own doing, not ours. Nobody is left to read the answer.
 */
export function isClientAbort(error: unknown): boolean {
  const e = error as { code?: unknown; message?: unknown } | null;
  return typeof e === 'object' && e !== null && e.code === 'ECONNRESET' && e.message === 'aborted';
}

export function toErrorResponse(error: unknown): ErrorResponse {
  if (isClientAbort(error)) {
    return { status: 400, body: { error: { code: 'E_REQUEST_ABORTED', message: 'the client closed the connection before the body arrived' } }, headers: {}, unexpected: false };
  }
  if (error instanceof HttpError) {
    return { status: error.status, body: { error: { code: error.code, message: error.message } }, headers: error.headers, unexpected: false };
  }
  if (error instanceof LockstepError) {
    const status = STATUS_OF.find(([type]) => error instanceof type)?.[1];
    if (status !== undefined) {
      const body: ErrorBody =
        error instanceof CacheWriteError
          ? // The write is durable: the client must learn the version it committed.
            { error: { code: error.code, message: error.message, committedVersion: error.committedVersion } }
          : error instanceof PreconditionFailedError
            ? // What the client needs to retry its compare-and-set.
              { error: { code: error.code, message: error.message, currentVersion: error.currentVersion } }
            : { error: { code: error.code, message: error.message } };
      // A 503 is worth retrying, except a committed write: retrying it would write again.
      const retry = status === 503 && !(error instanceof CacheWriteError);
      const headers: Record<string, string> = retry ? { 'Retry-After': '1' } : {};
      if (error instanceof PreconditionFailedError && error.currentVersion > 0) headers.ETag = `"${error.currentVersion}"`;
      return { status, body, headers, unexpected: false };
    }
  }
  return {
    status: 500,
    body: { error: { code: 'E_INTERNAL', message: 'internal error' } },
    headers: {},
    unexpected: true,
  };
}

export function notFound(message: string): HttpError {
  return new HttpError(404, 'E_NOT_FOUND', message);
}

export function badJson(message: string): HttpError {
  return new HttpError(400, 'E_BAD_JSON', message);
}

export function bodyTooLarge(limitBytes: number): HttpError {
  // The rest of the body is still on its way: close the connection rather than read it to the end.
  return new HttpError(413, 'E_BODY_TOO_LARGE', `request body is larger than ${limitBytes} bytes`, { Connection: 'close' });
}

export function jsonTooDeep(maxDepth: number): HttpError {
  return new HttpError(400, 'E_JSON_TOO_DEEP', `the body nests arrays and objects more than ${maxDepth} levels deep`);
}

export function methodNotAllowed(method: string, allow: readonly string[]): HttpError {
  return new HttpError(405, 'E_METHOD_NOT_ALLOWED', `${method} is not allowed here; use ${allow.join(', ')}`, {
    Allow: allow.join(', '),
  });
}

export function unauthorized(message: string): HttpError {
  return new HttpError(401, 'E_UNAUTHORIZED', message, { 'WWW-Authenticate': 'Bearer realm="lockstep"' });
}

export function forbidden(message: string): HttpError {
  return new HttpError(403, 'E_FORBIDDEN', message);
}

/** The request's Host is not one this service answers to (DNS rebinding, see cross-site.ts). */
export function hostNotAllowed(message: string): HttpError {
  return new HttpError(403, 'E_HOST_NOT_ALLOWED', message);
}

/** A browser request from another origin (no CORS is granted). */
export function crossOrigin(message: string): HttpError {
  return new HttpError(403, 'E_CROSS_ORIGIN', message);
}

export function unsupportedMediaType(message: string): HttpError {
  return new HttpError(415, 'E_UNSUPPORTED_MEDIA_TYPE', message);
}

export function rateLimited(retryAfterMs: number): HttpError {
  // Retry-After counts whole seconds: round up, so that a client that waits that long gets through.
  const seconds = Math.max(1, Math.ceil(retryAfterMs / 1000));
  return new HttpError(429, 'E_RATE_LIMITED', `too many requests; retry in ${seconds} s`, { 'Retry-After': String(seconds) });
}

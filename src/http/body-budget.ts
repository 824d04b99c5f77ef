// The REST app's body budget (maxTotalBodyBytes): request bodies being read, every connection
// together. Each body is bounded on its own (bodyLimitBytes, one request at a time per connection),
// but not all of them: 1000 connections that each upload a body just under the limit, slowly, held
// 1000 × ~1.1 MiB (measured: 300 of them grew `lockstep serve` by 343 MB). Over the budget a
// request is answered 503 E_BUSY (Retry-After, the connection closed) and holds nothing.
//
// A body is counted as its bytes arrive, not by what it declares: a Content-Length is only a
// promise, and 240 connections that each declared a megabyte and sent nothing would otherwise hold
// the whole budget, and refuse every other upload, until Node's requestTimeout cut them. A declared
// length over bodyLimitBytes is refused before any of the body is read. The bytes are given back
// exactly once, when the route's handler is done with the request (answered, failed, or the client
// left and the read failed): the body, its text and its parsed value are garbage then. A client that
// stalls mid-body holds what it sent until Node's requestTimeout cuts it (server.ts).
import type { MiddlewareHandler } from 'hono';
import type { ReplyBudget } from '../service/reply-budget.js';
import { bodyTooLarge, HttpError } from './errors.js';

/** Budget state, read-only: for tests and operators. */
export interface BodyBudgetView {
  /** Bytes of request bodies held now, every connection together. */
  readonly held: number;
  readonly limit: number;
}

export function bodiesBusy(limit: number): HttpError {
  // The rest of the body is still on its way: close the connection rather than read it to the end.
  return new HttpError(503, 'E_BUSY', `the service holds its limit of ${limit} bytes of request bodies being read (maxTotalBodyBytes); retry`, {
    'Retry-After': '1',
    Connection: 'close',
  });
}

/**
 * Refuses a body over `limitBytes` (413 E_BODY_TOO_LARGE) or one that does not fit in `budget`
 * now (503 E_BUSY), and holds the body's bytes in `budget` until the handler is done.
 */
export function budgetedBody(limitBytes: number, budget: ReplyBudget): MiddlewareHandler {
  return async function budgetedBody(c, next) {
    const body = c.req.raw.body;
    if (body === null) return next();
    const declared = c.req.raw.headers.has('transfer-encoding') ? undefined : c.req.raw.headers.get('content-length');
    let taken = 0;
    try {
      if (declared !== undefined && declared !== null && !(Number(declared) <= limitBytes)) throw bodyTooLarge(limitBytes);
      // Counted as it arrives, then handed on as one buffer.
      const chunks: Uint8Array[] = [];
      const reader = body.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        if (taken + value.length > limitBytes) throw bodyTooLarge(limitBytes);
        if (!budget.take(value.length)) throw bodiesBusy(budget.limit);
        taken += value.length;
        chunks.push(value);
      }
      c.req.raw = new Request(c.req.raw, { body: Buffer.concat(chunks, taken) });
      chunks.length = 0;
      await next();
    } finally {
      budget.give(taken);
    }
  };
}

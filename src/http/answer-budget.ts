// The REST app's answer budget (maxTotalAnswerBytes): what the answers that carry values (GET of a
// key, its /state, :batchGet) hold across every connection, from the moment their text is counted
// (right after the read; a batch value by value, its few reads in flight not yet counted) until the
// response's last byte has been handed to the kernel. Each connection is bounded on its own (one request at a time,
// server.ts; an answer at most maxBatchItems values), but not all of them together: 1000 clients
// that each ask for a 100 MiB :batchGet and never read would hold 100 GB. Over the budget a
// request is answered 503 E_BUSY (Retry-After) and holds nothing.
//
// An answer is counted as the length of its JSON text (as JavaScript holds it: one unit a
// character; on the wire ASCII is one byte a character, other text up to three). The count is
// taken once the text is built (a batch: item by item, as each is read, so a refused batch stops
// reading) and given back exactly once, at the first of the response's 'finish' (its last byte is
// with the kernel) and 'close' (the connection closed first: the client left, the idle cut,
// close()). Without a Node response to follow (app.request(), another adapter) the bytes are given
// back as soon as the handler has the answer: nothing this module can see holds them.
import type { Context } from 'hono';
import type { ServerResponse } from 'node:http';
import { ReplyBudget } from '../service/reply-budget.js';
import { HttpError } from './errors.js';

export { ReplyBudget };

/** Budget state, read-only: for tests and operators. */
export interface AnswerBudgetView {
  /** Bytes held now by answers not yet handed to the kernel, every connection together. */
  readonly held: number;
  readonly limit: number;
}

export function answersBusy(limit: number): HttpError {
  return new HttpError(503, 'E_BUSY', `the service holds its limit of ${limit} bytes of answers not yet sent (maxTotalAnswerBytes); retry`, { 'Retry-After': '1' });
}

/** The Node response the request will be written to, when @hono/node-server runs the app. */
function outgoingOf(c: Context): ServerResponse | undefined {
  const env = c.env as { outgoing?: unknown } | undefined;
  const outgoing = env?.outgoing as ServerResponse | undefined;
  return outgoing !== undefined && typeof outgoing.once === 'function' ? outgoing : undefined;
}

/**
 * Hands `bytes`, already taken from `budget`, to the request's response: they are given back once,
 * when the response has been handed to the kernel or its connection has closed, whichever is first.
 */
export function holdUntilSent(c: Context, budget: ReplyBudget, bytes: number): void {
  if (bytes === 0) return;
  const res = outgoingOf(c);
  if (res === undefined || res.destroyed || res.writableFinished) {
    budget.give(bytes); // nothing will send it, or it is sent: the bytes are held no longer
    return;
  }
  let given = false;
  const giveBack = (): void => {
    if (given) return;
    given = true;
    budget.give(bytes);
  };
  // Node (20+) emits 'finish' also when the socket is destroyed with the answer unsent (the client
  // left, the idle cut): the bytes are dropped with it. 'close' covers a response closed before it
  // was ended; a response already closed before this point gets no event at all, hence the check above.
  res.once('finish', giveBack);
  res.once('close', giveBack);
}

/** A JSON answer whose text is held against the budget until it is sent; 503 E_BUSY (nothing held) when it does not fit. */
export function budgetedJson(c: Context, budget: ReplyBudget, answer: unknown, status: 200, headers: Readonly<Record<string, string>>): Response {
  const text = JSON.stringify(answer);
  if (!budget.take(text.length)) throw answersBusy(budget.limit);
  holdUntilSent(c, budget, text.length);
  return c.body(text, status, { ...headers, 'Content-Type': 'application/json' });
}

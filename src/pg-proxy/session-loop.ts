// A session's main loop: one batch at a time (messages up to Sync, Query, FunctionCall, Flush or
// Terminate), so that the proxy's own statements never interleave with a client's transaction.
import { build, byteLength, joinMessages, type Message } from './framing.js';
import { toClient } from './backpressure.js';
import { drained } from './message-queue.js';
import { planExtended, planQuery, type Plan } from './batch.js';
import { readPoint } from './read-path.js';
import { isThenable } from '../maybe-promise.js';
import { relay } from './relay.js';
import type { PassReason } from './context.js';
import { recordParameter, type SessionState } from './state.js';

const ENDS_BATCH = new Set(['S', 'Q', 'F', 'H', 'X']);
const MAX_BATCH_MESSAGES = 100_000;
/**
 * A batch whose messages reach this many bytes without a terminator is relayed as it stands, the rest
 * following as it comes (as at the message cap): its messages are not all held in memory first.
 */
export const MAX_BATCH_BYTES = 1024 * 1024;

/** While no batch is in flight, whatever the server sends (notifications, notices, a FATAL) goes straight to the client. */
function relayUnsolicited(state: SessionState, on: boolean): void {
  const { upstream } = state;
  if (!on) {
    upstream.onMessage = undefined;
    return;
  }
  let pass = unsolicited.get(state);
  if (pass === undefined) unsolicited.set(state, (pass = (m: Message): boolean => passUnsolicited(state, m)));
  for (const m of upstream.drain()) pass(m);
  upstream.onMessage = pass;
}

/** Each session's handler of unsolicited messages, made once (not a closure per batch). */
const unsolicited = new WeakMap<SessionState, (m: Message) => boolean>();

function passUnsolicited(state: SessionState, m: Message): boolean {
  if (m.type === 'S') recordParameter(state, m); // e.g. a configuration reload: probe settings again
  toClient(state, m.raw); // a client that LISTENs and does not read holds PostgreSQL back, not the proxy's memory
  return true;
}

/** A batch being gathered and its size in bytes. */
interface Gathering {
  readonly messages: Message[];
  bytes: number;
}

/** Whether a batch is complete: it ends with Sync, Query, FunctionCall, Flush or Terminate, or reached a cap. */
function complete(batch: Gathering): boolean {
  const last = batch.messages[batch.messages.length - 1];
  return last !== undefined && (ENDS_BATCH.has(last.type) || batch.messages.length >= MAX_BATCH_MESSAGES || batch.bytes >= MAX_BATCH_BYTES);
}

function add(batch: Gathering, m: Message): void {
  batch.messages.push(m);
  batch.bytes += byteLength(m);
}

/** Moves the client's messages that already arrived into `batch` until it is complete; whether it is. */
function takeQueued(state: SessionState, batch: Gathering): boolean {
  while (!complete(batch)) {
    const m = state.client.tryNext();
    if (m === undefined) return false;
    add(batch, m);
  }
  return true;
}

function planOf(state: SessionState, batch: readonly Message[]): Plan {
  const last = batch[batch.length - 1]!;
  if (last.type === 'Q' && batch.length === 1) return planQuery(last.body.toString('utf8', 0, last.body.length - 1), state.ctx.tables);
  if (last.type === 'S') return planExtended(batch, state.statements, state.ctx.tables, state.planMemo);
  return { kind: 'pass', reason: 'not-cacheable' };
}

export async function runBatches(state: SessionState): Promise<void> {
  const { ctx } = state;
  for (;;) {
    state.planMemo.parsed = undefined; // the last batch's message (and its chunk) is not kept while the session waits
    if (state.draining && state.status === 'I' && state.client.pending === 0) {
      state.client.socket.end(build.error('FATAL', '57P01', 'terminating connection: the proxy is shutting down'));
      return;
    }
    // A client that has not taken the answers sent so far gets no more (hits are answered without
    // PostgreSQL, so holding PostgreSQL back does not stop them): its next batch waits.
    if (state.client.socket.writableNeedDrain) {
      ctx.metrics.backpressureWaits.client++;
      await drained(state.client.socket);
    }
    // The client's next batch. Messages that already arrived are taken at once; only an empty queue
    // is awaited (here, not in a function of its own: one promise less per batch).
    const gathering: Gathering = { messages: [], bytes: 0 };
    const batch = gathering.messages;
    if (state.client.pending === 0) {
      // Nothing in flight, nothing received: the session is idle until the client's first message.
      state.idle = true;
      relayUnsolicited(state, true);
      try {
        add(gathering, await state.client.next());
      } finally {
        state.idle = false;
        relayUnsolicited(state, false);
      }
    }
    while (!takeQueued(state, gathering)) add(gathering, await state.client.next());
    const last = batch[batch.length - 1]!;
    if (last.type === 'X') {
      state.upstream.socket.end(joinMessages(batch));
      return;
    }
    let reason: PassReason = 'not-cacheable';
    const plan = planOf(state, batch);
    if (plan.kind === 'read') {
      if (state.status !== 'I') reason = 'in-transaction';
      else {
        const answered = readPoint(state, batch, plan.read);
        const passed = isThenable(answered) ? await answered : answered;
        if (passed === undefined) continue;
        reason = passed;
      }
    } else reason = plan.reason;
    ctx.metrics.passThrough[reason]++;
    await relay(state, batch);
  }
}

// A session's main loop: one batch at a time (messages up to Sync, Query, FunctionCall, Flush or
// Terminate), so that the proxy's own statements never interleave with a client's transaction.
import { build, joinMessages, type Message } from './framing.js';
import { planExtended, planQuery, type Plan } from './batch.js';
import { readPoint } from './read-path.js';
import { isThenable } from '../maybe-promise.js';
import { relay } from './relay.js';
import type { PassReason } from './context.js';
import { recordParameter, type SessionState } from './state.js';

const ENDS_BATCH = new Set(['S', 'Q', 'F', 'H', 'X']);
const MAX_BATCH_MESSAGES = 100_000;

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
  state.client.socket.write(m.raw);
  return true;
}

/** Whether a batch is complete: it ends with Sync, Query, FunctionCall, Flush or Terminate, or reached the cap. */
function complete(batch: readonly Message[]): boolean {
  const last = batch[batch.length - 1];
  return last !== undefined && (ENDS_BATCH.has(last.type) || batch.length >= MAX_BATCH_MESSAGES);
}

/** Moves the client's messages that already arrived into `batch` until it is complete; whether it is. */
function takeQueued(state: SessionState, batch: Message[]): boolean {
  while (!complete(batch)) {
    const m = state.client.tryNext();
    if (m === undefined) return false;
    batch.push(m);
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
    if (state.draining && state.status === 'I' && state.client.pending === 0) {
      state.client.socket.end(build.error('FATAL', '57P01', 'terminating connection: the proxy is shutting down'));
      return;
    }
    // The client's next batch. Messages that already arrived are taken at once; only an empty queue
    // is awaited (here, not in a function of its own: one promise less per batch).
    const batch: Message[] = [];
    if (state.client.pending === 0) {
      // Nothing in flight, nothing received: the session is idle until the client's first message.
      state.idle = true;
      relayUnsolicited(state, true);
      try {
        batch.push(await state.client.next());
      } finally {
        state.idle = false;
        relayUnsolicited(state, false);
      }
    }
    while (!takeQueued(state, batch)) batch.push(await state.client.next());
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

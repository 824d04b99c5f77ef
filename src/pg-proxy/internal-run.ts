// Runs the proxy's own statements on a session's upstream connection and reads their answers up to
// ReadyForQuery; asynchronous messages (notifications, notices, parameter changes) are relayed to the client.
import { build, type Message } from './framing.js';
import { collectRows, isAsync } from './internal.js';
import { recordParameter, type SessionState } from './state.js';
import type { MaybePromise } from '../types.js';

export interface InternalOutcome {
  readonly rows: (string | null)[][];
  readonly error: Message | undefined;
  readonly status: 'I' | 'T' | 'E';
}

export async function runInternal(state: SessionState, messages: readonly Buffer[]): Promise<InternalOutcome> {
  state.upstream.socket.write(Buffer.concat([...messages, build.sync()]));
  return readInternal(state);
}

/**
 * Reads answers of statements already sent, up to ReadyForQuery. `relayAsync` receives the client's
 * asynchronous messages (default: written to the client at once). Answers already received are read
 * without a promise (a pipelined fence's answer usually came with the batch's).
 */
export function readInternal(state: SessionState, relayAsync?: (m: Message) => void): MaybePromise<InternalOutcome> {
  const reading: Reading = { answers: [], error: undefined };
  for (let m = state.upstream.tryNext(); m !== undefined; m = state.upstream.tryNext()) {
    const done = take(state, reading, m, relayAsync);
    if (done !== undefined) return done;
  }
  return readRest(state, reading, relayAsync);
}

interface Reading {
  readonly answers: Message[];
  error: Message | undefined;
}

async function readRest(state: SessionState, reading: Reading, relayAsync?: (m: Message) => void): Promise<InternalOutcome> {
  for (;;) {
    const m = state.upstream.tryNext() ?? (await state.upstream.next());
    const done = take(state, reading, m, relayAsync);
    if (done !== undefined) return done;
  }
}

/** One answer: the outcome at ReadyForQuery, else undefined. */
function take(state: SessionState, reading: Reading, m: Message, relayAsync?: (m: Message) => void): InternalOutcome | undefined {
  if (isAsync(m)) {
    if (m.type === 'S') recordParameter(state, m);
    if (relayAsync === undefined) state.client.socket.write(m.raw);
    else relayAsync(m);
    return undefined;
  }
  if (m.type === 'E') {
    reading.error ??= m;
    state.preparedInternal.clear(); // which of ours exist is no longer known: parse them again
  }
  if (m.type === 'Z') {
    state.status = String.fromCharCode(m.body[0]!) as 'I';
    return { rows: collectRows(reading.answers), error: reading.error, status: state.status };
  }
  reading.answers.push(m);
  return undefined;
}

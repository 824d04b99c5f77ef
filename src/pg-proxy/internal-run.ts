// Runs the proxy's own statements on a session's upstream connection and reads their answers up to
// ReadyForQuery; asynchronous messages (notifications, notices, parameter changes) are relayed to the client.
import { build, type Message } from './framing.js';
import { collectRows, isAsync } from './internal.js';
import { recordParameter, type SessionState } from './state.js';

export interface InternalOutcome {
  readonly rows: (string | null)[][];
  readonly error: Message | undefined;
  readonly status: 'I' | 'T' | 'E';
}

export async function runInternal(state: SessionState, messages: readonly Buffer[]): Promise<InternalOutcome> {
  state.upstream.socket.write(Buffer.concat([...messages, build.sync()]));
  return readInternal(state);
}

/** Reads answers of statements already sent, up to ReadyForQuery. `relayAsync` receives the client's asynchronous messages (default: written to the client at once). */
export async function readInternal(state: SessionState, relayAsync?: (raw: Buffer) => void): Promise<InternalOutcome> {
  const answers: Message[] = [];
  let error: Message | undefined;
  for (;;) {
    const m = state.upstream.tryNext() ?? (await state.upstream.next());
    if (isAsync(m)) {
      if (m.type === 'S') recordParameter(state, m);
      if (relayAsync === undefined) state.client.socket.write(m.raw);
      else relayAsync(m.raw);
      continue;
    }
    if (m.type === 'E') {
      error ??= m;
      state.preparedInternal.clear(); // which of ours exist is no longer known: parse them again
    }
    if (m.type === 'Z') {
      state.status = String.fromCharCode(m.body[0]!) as 'I';
      return { rows: collectRows(answers), error, status: state.status };
    }
    answers.push(m);
  }
}

// The state of one client session, shared by the session's loop, its relay and its read path.
import type { Message } from './framing.js';
import type { MessageQueue } from './message-queue.js';
import type { ProxyContext } from './context.js';
import type { PlanMemo, StatementInfo } from './batch.js';
import type { WrittenRow } from './fence.js';

export interface SessionState {
  readonly ctx: ProxyContext;
  readonly client: MessageQueue;
  readonly upstream: MessageQueue;
  /** Transaction status from the last ReadyForQuery. */
  status: 'I' | 'T' | 'E';
  /** ParameterStatus values the server reported. */
  readonly parameters: Map<string, string>;
  /** The client's view of its prepared statements ('' = the unnamed one). */
  readonly statements: Map<string, StatementInfo>;
  /** Statement name → the table definition a fill's execution of it succeeded under (prepared-definition.ts). */
  readonly verifiedStatements: Map<string, string>;
  /** The upstream's unnamed statement lags the client's (a hit answered a Parse ""): re-create it before use. */
  unnamedStale: StatementInfo | undefined;
  /** Output settings and name resolution (fingerprintSql) as last probed; undefined after anything that may change them. */
  fingerprint: string | undefined;
  resolves: readonly string[] | undefined;
  /** Answer variants already hashed under `fingerprint` (read-path.ts), by request shape. */
  variants: { readonly fingerprint: string; readonly byShape: Map<string, string> } | undefined;
  /** The proxy's own statements parsed on the upstream connection, name → text (internal.ts). */
  readonly preparedInternal: Map<string, string>;
  /** Journal id up to which this backend's writes are fenced. */
  journalCursor: number;
  /** When the fence statement was last parsed (Date.now()): it is parsed again every FENCE_REPLAN_MS. */
  fenceParsedAt: number;
  /** The fence reads my_writes instead of the my_journal view (the view was refused: session-fence.ts). */
  fenceThroughFunction: boolean;
  /** Write markers taken out of the upstream's stream so far (write-marker.ts): a batch that got one is fenced. */
  writeMarks: number;
  /** The session's backend is registered for the write marker (session_start; not when read-only). */
  markerRegistered: boolean;
  /** A rearm committed after the last marker seen: the next write raises one, so a batch of SELECTs without one may skip its fence. */
  markerArmed: boolean;
  /** After a rearm failed (e.g. the session turned read-only), none is tried before this time (Date.now()). */
  rearmRetryAt: number;
  /** The session's backend carries the proxy's startup setting: its journal rows are announced (write-marker.ts). */
  announcing: boolean;
  /** Journal rows announced since the last transaction's end (applied when the transaction ends: relay.ts). */
  announced: WrittenRow[];
  /** More rows were announced in this transaction than are kept: its end runs the fence statement. */
  announceOverflow: boolean;
  /** Cached tables whose definition statements of the current transaction may change. */
  readonly pendingFlush: Set<string>;
  /** What the session's last batches decoded (batch.ts): skips decoding the same bytes again. */
  readonly planMemo: PlanMemo;
  /** Set when the proxy drains: the session ends at its next idle point. */
  draining: boolean;
  /** Waiting for the client's next batch with nothing in flight. */
  idle: boolean;
}

export function recordParameter(state: SessionState, m: Message): void {
  const name = m.body.toString('utf8', 0, m.body.indexOf(0));
  const valueStart = m.body.indexOf(0) + 1;
  state.parameters.set(name, m.body.toString('utf8', valueStart, m.body.indexOf(0, valueStart)));
  state.fingerprint = undefined;
}

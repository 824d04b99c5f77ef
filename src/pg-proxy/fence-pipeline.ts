// When the fence may ride in the same write as the client's batch. The fence statement is sent right
// behind the batch's own Sync (or Query), so it runs after the batch ended, in a transaction of its
// own, on the same backend — exactly where the separate fence would run, one round trip earlier.
// That is only true when the batch provably ends idle, and only harmless when nothing in the batch
// reads further input from the client. Judged with PostgreSQL's grammar (libpg-query), never a regex:
// - the session is idle before the batch ('I'): a batch inside a transaction ends inside it (or
//   its status is not 'I' and no fence is due), unless it commits — so it is not pipelined;
// - no statement of the batch is transaction control (BEGIN, COMMIT, SAVEPOINT, PREPARE TRANSACTION …):
//   without one, a batch run from idle ends idle, whether it succeeded or failed (the implicit
//   transaction commits or rolls back at the Sync / end of the Query);
// - no COPY (COPY FROM STDIN would read the fence's messages as its input);
// - every statement the batch executes is known: parsed in the batch, or a prepared statement whose
//   text the session saw; every Execute names a portal bound in the batch; no FunctionCall.
// Anything else (and any text that does not parse) takes today's separate fence. The relay still
// checks the status the batch really ended with (relay.ts).
// A batch of plain SELECTs needs no fence at all unless one of them wrote a cached table through a
// function or a writable CTE: such a write raises the write marker (write-marker.ts) before the
// batch's ReadyForQuery, and only then is the batch fenced (canSkipFence).
import { leadingCString, readCString, type Message } from './framing.js';
import { statementTypesOf } from './classify.js';
import { parseMessageMemo } from './batch.js';
import type { SessionState } from './state.js';
import { writeMarkersVerified } from './context.js';

const REFUSED = new Set(['TransactionStmt', 'CopyStmt']);
const EXTENDED = new Set(['P', 'B', 'D', 'E', 'C', 'S']);

// Judged once per text (clients send the same few texts again and again), bounded.
const MAX_REMEMBERED = 2_000;

/** A verdict on statement texts, remembered per text. */
function textVerdict(judge: (types: readonly string[]) => boolean): (sql: string | undefined) => boolean {
  const verdicts = new Map<string, boolean>();
  return (sql) => {
    if (sql === undefined) return false;
    const known = verdicts.get(sql);
    if (known !== undefined) return known;
    const types = statementTypesOf(sql);
    const verdict = types !== undefined && judge(types);
    if (sql.length <= 4_096) {
      if (verdicts.size >= MAX_REMEMBERED) verdicts.delete(verdicts.keys().next().value!);
      verdicts.set(sql, verdict);
    }
    return verdict;
  };
}

/** No transaction control, no COPY. */
const safeText = textVerdict((types) => types.every((type) => type !== '' && !REFUSED.has(type)));
/** Plain SELECTs only (or no statement): they write a cached table only through a function or a writable CTE, and then raise the write marker. */
const selectOnly = textVerdict((types) => types.every((type) => type === 'SelectStmt'));

/**
 * Whether every statement the batch executes is known and passes `ok`: a single Query, or extended
 * messages ending with the batch's only Sync, whose every Execute names a portal bound in the batch
 * to a statement parsed in the batch or one whose text the session saw.
 */
function everyStatement(state: SessionState, batch: readonly Message[], ok: (sql: string | undefined) => boolean): boolean {
  const last = batch[batch.length - 1]!;
  if (last.type === 'Q') return batch.length === 1 && ok(readCString(last.body, 0).value);
  if (last.type !== 'S') return false;
  // Statements parsed and portals bound in the batch. Most batches use only the unnamed ones
  // (Parse "", Bind "" "", Execute ""): those are kept aside, and a Map or Set made only for names.
  let unnamedParsed: string | undefined;
  let parsed: Map<string, string> | undefined;
  let unnamedBound = false;
  let bound: Set<string> | undefined;
  for (let i = 0; i < batch.length; i++) {
    const m = batch[i]!;
    if (!EXTENDED.has(m.type) || (m.type === 'S' && i !== batch.length - 1)) return false;
    if (m.type === 'P') {
      // The session's memo: the same Parse bytes give the same text object (its verdict found by a hash kept on it).
      const { name, sql } = parseMessageMemo(m, state.planMemo);
      if (!ok(sql)) return false;
      if (name === '') unnamedParsed = sql;
      else (parsed ??= new Map()).set(name, sql);
    } else if (m.type === 'B') {
      const body = m.body;
      const unnamed = body[0] === 0 && body[1] === 0; // portal and statement
      const portal = unnamed ? { value: '', next: 1 } : readCString(body, 0);
      const statement = unnamed ? '' : readCString(body, portal.next).value;
      const sql = (statement === '' ? unnamedParsed : parsed?.get(statement)) ?? state.statements.get(statement)?.sql;
      if (!ok(sql)) return false;
      if (portal.value === '') unnamedBound = true;
      else (bound ??= new Set()).add(portal.value);
    } else if (m.type === 'E') {
      const portal = leadingCString(m.body);
      if (!(portal === '' ? unnamedBound : bound?.has(portal) === true)) return false;
    }
  }
  return true;
}

export function canPipelineFence(state: SessionState, batch: readonly Message[]): boolean {
  if (state.status !== 'I' || state.ctx.fence !== 'on') return false;
  return everyStatement(state, batch, safeText);
}

/**
 * Whether every statement of the batch is a plain SELECT, sent while the session is idle (so the
 * batch's implicit transaction ends idle and writes a cached table only through the journal's
 * writers, which raise the write marker when the session is armed: write-marker.ts).
 */
export function isSelectBatch(state: SessionState, batch: readonly Message[]): boolean {
  if (state.status !== 'I' || state.ctx.fence !== 'on') return false;
  return everyStatement(state, batch, selectOnly);
}

/**
 * Whether a batch of SELECTs may skip its fence unless a write marker arrives among its answers: the
 * session is armed, nothing is left to flush, and the drainer's last pass found the marker installed
 * (an older proxy's install sharing the database replaces the journal's writers without it).
 */
export function canSkipFence(state: SessionState, selectBatch: boolean): boolean {
  return selectBatch && state.markerArmed && state.pendingFlush.size === 0 && writeMarkersVerified(state.ctx);
}

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
import { readCString, type Message } from './framing.js';
import { statementTypesOf } from './classify.js';
import { parseMessageMemo } from './batch.js';
import type { SessionState } from './state.js';

const REFUSED = new Set(['TransactionStmt', 'CopyStmt']);
const EXTENDED = new Set(['P', 'B', 'D', 'E', 'C', 'S']);

// Judged once per text (clients send the same few texts again and again), bounded.
const MAX_REMEMBERED = 2_000;
const verdicts = new Map<string, boolean>();

function safeText(sql: string | undefined): boolean {
  if (sql === undefined) return false;
  const known = verdicts.get(sql);
  if (known !== undefined) return known;
  const types = statementTypesOf(sql);
  const safe = types !== undefined && types.every((type) => type !== '' && !REFUSED.has(type));
  if (sql.length <= 4_096) {
    if (verdicts.size >= MAX_REMEMBERED) verdicts.delete(verdicts.keys().next().value!);
    verdicts.set(sql, safe);
  }
  return safe;
}

export function canPipelineFence(state: SessionState, batch: readonly Message[]): boolean {
  if (state.status !== 'I' || state.ctx.fence !== 'on') return false;
  const last = batch[batch.length - 1]!;
  if (last.type === 'Q') return batch.length === 1 && safeText(readCString(last.body, 0).value);
  if (last.type !== 'S') return false;
  const parsed = new Map<string, string>();
  const bound = new Set<string>();
  for (let i = 0; i < batch.length; i++) {
    const m = batch[i]!;
    if (!EXTENDED.has(m.type) || (m.type === 'S' && i !== batch.length - 1)) return false;
    if (m.type === 'P') {
      // The session's memo: the same Parse bytes give the same text object (its verdict found by a hash kept on it).
      const { name, sql } = parseMessageMemo(m, state.planMemo);
      if (!safeText(sql)) return false;
      parsed.set(name, sql);
    } else if (m.type === 'B') {
      const portal = readCString(m.body, 0);
      const statement = readCString(m.body, portal.next).value;
      const sql = parsed.get(statement) ?? state.statements.get(statement)?.sql;
      if (!safeText(sql)) return false;
      bound.add(portal.value);
    } else if (m.type === 'E') {
      if (!bound.has(readCString(m.body, 0).value)) return false;
    }
  }
  return true;
}

// The fence of one session (fence.ts says what it is): where a session's journal cursor starts, the
// fence statement itself, and applying its answer. The statement either runs on its own once the
// client's batch ended idle (a round trip of its own), or was pipelined behind the client's batch in
// the same write (fence-pipeline.ts decides when that is safe); either way the client's ReadyForQuery
// is relayed only after the answer was applied.
import { quoteIdentifier } from '../store/postgres-schema.js';
import { statementMessages } from './internal.js';
import { runInternal, type InternalOutcome } from './internal-run.js';
import { applyWrites, writtenRows, type WrittenRow } from './fence.js';
import { announcementsVerified, noteFenceFailure } from './context.js';
import { isThenable } from '../maybe-promise.js';
import { WRITE_MARKER_SETTING } from './write-marker.js';
import { errorCode, type Message } from './framing.js';
import type { MaybePromise } from '../types.js';
import type { SessionState } from './state.js';

export async function openCursor(state: SessionState): Promise<void> {
  const s = quoteIdentifier(state.ctx.schema);
  // Also reads the write marker's setting (write-marker.ts): an upstream that dropped the startup
  // parameter leaves it unset, and then no fence of the session is skipped.
  const sql = `SELECT ${s}.journal_mark()::text, pg_catalog.current_setting('${WRITE_MARKER_SETTING}', true)`;
  const result = await runInternal(state, statementMessages(state.preparedInternal, 'mark', sql, []));
  if (result.error !== undefined) throw new Error('lockstep pg-proxy: cannot read the journal mark (is the proxy schema installed?)');
  state.journalCursor = Number(result.rows[0]?.[0] ?? 0);
  state.markerRegistered = state.markerArmed = result.rows[0]?.[1] === 'armed';
  // Defined (whatever its value: the client can change it, not remove it), the journal announces this backend's rows.
  state.announcing = result.rows[0]?.[1] !== null && result.rows[0]?.[1] !== undefined;
}

/** The most journal rows a session keeps for one transaction; past it, the transaction's end runs the fence statement. */
export const MAX_ANNOUNCED = 10_000;

/** One announced journal row of this proxy's schema (write-marker.ts), kept until the transaction ends. */
export function noteAnnouncement(state: SessionState, row: WrittenRow): void {
  if (state.announceOverflow) return;
  if (state.announced.length >= MAX_ANNOUNCED) {
    state.announceOverflow = true;
    state.announced = [];
    return;
  }
  state.announced.push(row);
}

/**
 * Whether the end of the session's current transaction may be fenced by its announced rows alone: the
 * session's backend announces (its startup setting), none was dropped for the cap, and the drainer's
 * last pass found the journal announcing, recently. Otherwise the fence statement reads the journal.
 */
export function announcementsTrusted(state: SessionState): boolean {
  const { ctx } = state;
  return ctx.fence === 'on' && ctx.announcedFences && state.announcing && !state.announceOverflow && announcementsVerified(ctx);
}

/**
 * The fence of a transaction that ended (its ReadyForQuery 'I' read, not yet relayed) by the rows it
 * announced: every journal row this backend inserted since the last transaction's end, committed or not
 * (a row rolled back only costs its key a miss). Synchronous when the cache answers at once.
 */
export function fenceAnnounced(state: SessionState): MaybePromise<void> {
  state.ctx.metrics.fencesAnnounced++;
  const rows = state.announced;
  state.announced = [];
  // Announced rows do not move the journal cursor: a client can raise a NOTICE that looks like one
  // (RAISE NOTICE … ERRCODE 'LSW02'), and a forged far id would make the next fence statement skip the
  // session's own later rows. The cursor moves only with rows read from the journal.
  return applyFence(state, rows, false);
}

/** Forgets what was announced: the transaction's end was fenced by the fence statement, which reads those rows (if committed) itself. */
export function forgetAnnounced(state: SessionState): void {
  if (state.announced.length > 0) state.announced = [];
  state.announceOverflow = false;
}

/** CALL rearm() (no Sync): behind the fence of a batch of SELECTs, so that the next write raises the marker again. */
export function rearmMessages(state: SessionState): Buffer[] {
  return statementMessages(state.preparedInternal, 'rearm', `CALL ${quoteIdentifier(state.ctx.schema)}.rearm()`, []);
}

/** Whether the fence of a batch of SELECTs should rearm the marker (the session is registered, disarmed, and no rearm failed lately). */
export function shouldRearm(state: SessionState): boolean {
  return state.markerRegistered && !state.markerArmed && Date.now() >= state.rearmRetryAt;
}

const REARM_RETRY_MS = 1_000;

/**
 * How long one parse of the fence statement is used. PostgreSQL keeps a prepared statement's generic
 * plan until the journal's statistics change; parsed again, the plan is made for the journal's size
 * now (the planner scales its row estimate by the table's current pages), so a sequential scan
 * chosen while the journal was small lasts a second at most.
 */
export const FENCE_REPLAN_MS = 1_000;

/** The fence statement (no Sync): the committed journal rows of this backend after the session's cursor. */
export function fenceMessages(state: SessionState, now = Date.now()): Buffer[] {
  const s = quoteIdentifier(state.ctx.schema);
  if (state.fenceThroughFunction) {
    // The view is not readable by this session's role (see fenceFailed): the same rows through my_writes.
    return statementMessages(state.preparedInternal, 'fence_fn', `SELECT id::pg_catalog.text, tbl, key, version::pg_catalog.text FROM ${s}.my_writes($1::pg_catalog.int8)`, [String(state.journalCursor)]);
  }
  if (now - state.fenceParsedAt >= FENCE_REPLAN_MS) {
    state.preparedInternal.delete('fence'); // closed and parsed again below
    state.fenceParsedAt = now;
  }
  // <schema>.my_journal: this backend's journal rows (schema.ts); qualified names and types, so the
  // session's search_path cannot change what the statement means.
  const sql = `SELECT w.id::pg_catalog.text, w.tbl, w.key, w.version::pg_catalog.text FROM ${s}.my_journal w WHERE w.id OPERATOR(pg_catalog.>) $1::pg_catalog.int8 ORDER BY w.id`;
  return statementMessages(state.preparedInternal, 'fence', sql, [String(state.journalCursor)]);
}

/**
 * A fence statement failed. When the view itself was refused (no privilege on it: an older proxy's
 * install ran `REVOKE ALL ON ALL TABLES IN SCHEMA … FROM PUBLIC` after this one granted it; or no
 * such view), the session reads the same rows through my_writes from then on, as earlier proxies did.
 */
function fenceFailed(state: SessionState, error: Message): void {
  const code = errorCode(error.body);
  if (code === INSUFFICIENT_PRIVILEGE || code === UNDEFINED_TABLE) state.fenceThroughFunction = true;
}

const INSUFFICIENT_PRIVILEGE = '42501';
const UNDEFINED_TABLE = '42P01';

/**
 * Applies a fence's rows (and flushes what DDL relayed); synchronous when there is nothing to apply or the
 * cache answers at once (memory). `fromJournal`: the rows were read from the journal (they move the cursor).
 */
function applyFence(state: SessionState, rows: WrittenRow[], fromJournal = true): MaybePromise<void> {
  for (const table of state.pendingFlush) rows.push({ id: 0, table, key: null, version: 0 });
  if (rows.length === 0) return undefined; // most batches wrote nothing
  let applied: MaybePromise<void>;
  try {
    applied = applyWrites(state.ctx, rows);
  } catch {
    applied = undefined;
    noteFenceFailure(state.ctx);
  }
  const done = () => {
    state.pendingFlush.clear();
    if (fromJournal) for (const row of rows) if (row.id > state.journalCursor) state.journalCursor = row.id;
  };
  if (!isThenable(applied)) return done();
  return Promise.resolve(applied).then(done, () => {
    // Cache down: the write is committed and journaled; the drainer replays it when the cache answers
    // (pragmatic policy), and until that pass no hit is served (noteFenceFailure).
    noteFenceFailure(state.ctx);
    done();
  });
}

/**
 * The fence: called when a relayed batch ended with the session idle, before its ReadyForQuery is
 * relayed. `pipelined` is the answer of a fence statement sent behind the batch, if there was one and
 * it ran in its own transaction after the batch's end. Returns false when the written keys could not
 * be read (the caller must not acknowledge). Synchronous when the pipelined answer applies at once.
 */
export function fenceAfterIdle(state: SessionState, pipelined?: InternalOutcome, rearm = false): MaybePromise<boolean> {
  const { ctx } = state;
  if (ctx.fence === 'skip') return true; // TEST ONLY
  if (pipelined !== undefined && pipelined.error === undefined && pipelined.status === 'I') {
    ctx.metrics.fencesPipelined++;
    if (rearm) state.markerArmed = true; // the rearm sent with this fence committed with it
    const applied = applyFence(state, writtenRows(pipelined.rows));
    return isThenable(applied) ? Promise.resolve(applied).then(() => true) : true;
  }
  if (pipelined?.error !== undefined) {
    fenceFailed(state, pipelined.error);
    if (rearm) {
      // The rearm may be what failed (a session turned read-only): the fence runs on without it.
      state.rearmRetryAt = Date.now() + REARM_RETRY_MS;
      rearm = false;
    }
  }
  return separateFence(state, rearm);
}

async function separateFence(state: SessionState, rearm: boolean): Promise<boolean> {
  const { ctx } = state;
  for (let attempt = 0; attempt < 3; attempt++) {
    // A CancelRequest meant for the client's statement may hit this one: retry.
    const withRearm = rearm && attempt === 0;
    const result = await runInternal(state, withRearm ? [...fenceMessages(state), ...rearmMessages(state)] : fenceMessages(state));
    if (result.error !== undefined) {
      fenceFailed(state, result.error);
      if (withRearm) state.rearmRetryAt = Date.now() + REARM_RETRY_MS;
      continue;
    }
    ctx.metrics.fencesSeparate++;
    if (withRearm) state.markerArmed = true;
    await applyFence(state, writtenRows(result.rows));
    return true;
  }
  ctx.metrics.fenceFailures++;
  return false;
}

// Pass-through of one client batch: forwarded unchanged, the answers relayed unchanged, with three
// things watched on the way: prepared statements (the client's view), COPY (the client's data goes
// up as it comes), and every ReadyForQuery 'I' — a transaction just ended — which waits for the
// fence before the client may see it. When fence-pipeline.ts proves it safe, the fence statement
// goes up in the same write, right behind the batch, and its answer is read right after the batch's.
// A batch of plain SELECTs with no write marker among its answers needs no fence (write-marker.ts).
// And when the session's journal rows are announced (write-marker.ts), no batch sends a fence
// statement: the transaction's end is fenced with the rows it announced.
import { bindStatementName, bodyByte, build, byteLength, joinMessages, readCString, type Message } from './framing.js';
import { parseMessageMemo } from './batch.js';
import { otherStatementOf } from './classify.js';
import { announcementsTrusted, fenceAfterIdle, fenceAnnounced, fenceMessages, forgetAnnounced, rearmMessages, shouldRearm } from './session-fence.js';
import { canPipelineFence, canSkipFence, isSelectBatch } from './fence-pipeline.js';
import { forgetStatement } from './prepared-definition.js';
import { readInternal } from './internal-run.js';
import { isThenable } from '../maybe-promise.js';
import { isAsync, STATEMENT_PREFIX } from './internal.js';
import { recordParameter, type SessionState } from './state.js';
import type { MessageQueue } from './message-queue.js';
import { toClient, toUpstream } from './backpressure.js';

const TERMINATORS = new Set(['S', 'Q', 'F']);

/** What the client's messages of one batch may have done that its acknowledgement must wait for. */
interface Seen {
  /** It may have committed a prepared transaction (COMMIT PREPARED, a text that does not parse, a statement the proxy never saw). */
  commitsPrepared: boolean;
  /** The server answered a COMMIT since the last ReadyForQuery (a COMMIT AND CHAIN, or a COMMIT followed by BEGIN, ends in a transaction). */
  committed: boolean;
}

const COMMIT_TAG = Buffer.from('COMMIT\0');

/** A CommandComplete of a COMMIT (also COMMIT AND CHAIN, END; not COMMIT PREPARED, nor the ROLLBACK a failed transaction's COMMIT answers). */
function isCommit(m: Message): boolean {
  return m.type === 'C' && byteLength(m) === 5 + COMMIT_TAG.length && m.body.equals(COMMIT_TAG);
}

/** Keeps the session's view of prepared statements and notes DDL on cached tables. */
function track(state: SessionState, m: Message, parsedHere: string[], seen: Seen): void {
  if (m.type === 'P') {
    const info = parseMessageMemo(m, state.planMemo);
    state.statements.set(info.name, info);
    forgetStatement(state, info.name);
    parsedHere.push(info.name);
    if (info.name === '') state.unnamedStale = undefined;
    noteDdl(state, info.sql, seen);
  } else if (m.type === 'B') {
    // A statement the proxy never saw parsed (its text unknown) may be anything.
    if (!state.statements.has(bindStatementName(m.body))) seen.commitsPrepared = true;
  } else if (m.type === 'C' && m.body[0] === 0x53 /* S */) {
    const name = readCString(m.body, 1).value;
    state.statements.delete(name);
    forgetStatement(state, name);
    if (name.startsWith(STATEMENT_PREFIX)) state.preparedInternal.clear();
    if (name === '') state.unnamedStale = undefined;
  } else if (m.type === 'Q') {
    state.statements.delete(''); // a simple Query destroys the unnamed statement
    forgetStatement(state, '');
    state.unnamedStale = undefined;
    noteDdl(state, readCString(m.body, 0).value, seen);
  }
}

function noteDdl(state: SessionState, sql: string, seen: Seen): void {
  const other = otherStatementOf(sql, state.ctx.tables);
  if (other.commitsPrepared) seen.commitsPrepared = true;
  if (other.ddlTables.size > 0) for (const table of other.ddlTables) state.pendingFlush.add(table.qualified);
  if (other.dropsStatements) {
    state.statements.clear();
    state.verifiedStatements.clear();
    state.preparedInternal.clear();
    state.unnamedStale = undefined;
  }
}

/**
 * Does the batch use the unnamed statement before parsing it? A `Parse ""` (or `Close` of it) behind
 * another message counts as a use: when that message fails, PostgreSQL skips the Parse (up to the Sync) and the client's
 * unnamed statement stays what it was — the upstream must have it too (before, the upstream kept its
 * older one, and the client's next `Bind ""` ran that: an UPDATE, where the client meant a SELECT).
 */
function usesUnnamedFirst(batch: readonly Message[]): boolean {
  for (let i = 0; i < batch.length; i++) {
    const m = batch[i]!;
    if (m.type === 'P' && readCString(m.body, 0).value === '') return i > 0;
    if (m.type === 'C' && m.body[0] === 0x53 && readCString(m.body, 1).value === '') return i > 0; // Close, likewise
    if (m.type === 'Q') return false;
    if (m.type === 'B') {
      const portal = readCString(m.body, 0);
      if (readCString(m.body, portal.next).value === '') return true;
    }
    if (m.type === 'D' && m.body[0] === 0x53 && readCString(m.body, 1).value === '') return true;
  }
  return false;
}

/**
 * Writes the answers held so far to the client, in one write; PostgreSQL is not read while the client
 * has not taken them (back-pressure). (A function of the module, not a closure per batch.)
 */
function flushTo(state: SessionState, pending: Message[]): void {
  if (pending.length > 0) toClient(state, joinMessages(pending));
  pending.length = 0;
}

/** Answers that only acknowledge a step of the batch (Parse, Bind, Close, a description): more follows them without the client's input. */
const ACKNOWLEDGEMENTS = new Set(['1', '2', '3', 'n', 't', 'T']);

/**
 * Whether every answer held is an acknowledgement. In a batch that ends with Sync (not raw: nothing
 * more to read from the client) the server sends more after them without any input — at least the
 * ReadyForQuery — so they wait for it instead of going out alone: when a notice the client never sees
 * (a write announcement, taken out of the stream) made the server send them early, the client gets one
 * write, not two.
 */
function onlyAcknowledgements(pending: readonly Message[]): boolean {
  for (const m of pending) if (!ACKNOWLEDGEMENTS.has(m.type)) return false;
  return true;
}

/** Gives the client's queued messages to its onMessage, in order, up to the first it does not take. */
function handOver(client: MessageQueue): void {
  for (let m = client.peek(); m !== undefined && client.onMessage?.(m) === true; m = client.peek()) client.tryNext();
}

export async function relay(state: SessionState, batch: readonly Message[]): Promise<void> {
  const { client, upstream } = state;
  const parsedHere: string[] = [];
  const seen: Seen = { commitsPrepared: false, committed: false };
  let swallowParseComplete = 0;
  const out: Buffer[] = [];
  // A batch ended by Flush: the client waits for answers before it sends its Sync, so its next
  // messages go up as they come, up to and including the next Sync (or Query).
  // (Also a batch cut at the message cap without a terminator.)
  let raw = !TERMINATORS.has(batch[batch.length - 1]!.type);
  // A batch that goes on raw may use the unnamed statement in the messages still to come, which
  // usesUnnamedFirst cannot see: it is re-created first too.
  if (state.unnamedStale !== undefined && (raw || usesUnnamedFirst(batch))) {
    // A hit answered the client's Parse "" without the server: re-create it first.
    out.push(state.unnamedStale.parse);
    swallowParseComplete = 1;
    state.unnamedStale = undefined;
  }
  out.push(joinMessages(batch));
  // Decided before track() updates the session's view of its statements with this batch's.
  // A batch of SELECTs gets no fence unless a write marker arrives among its answers, and when it is
  // fenced, the fence rearms the marker (write-marker.ts).
  const selectBatch = isSelectBatch(state, batch);
  const rearm = selectBatch && shouldRearm(state);
  const marksBefore = state.writeMarks;
  // A session whose writes are announced sends no fence statement (checked again at the transaction's end).
  const announced = announcementsTrusted(state);
  // Not asked when announced: such a batch's end is fenced by its announcements (if they are no longer
  // trusted by then, by the fence statement, which is never wrong).
  const skippable = !announced && canSkipFence(state, selectBatch);
  // A batch of SELECTs passes every test of canPipelineFence (no transaction control, no COPY).
  const pipelined = !announced && !skippable && (selectBatch || canPipelineFence(state, batch));
  let expected = 0;
  for (const m of batch) {
    track(state, m, parsedHere, seen);
    if (TERMINATORS.has(m.type)) expected++;
  }
  if (pipelined) out.push(...fenceMessages(state), ...(rearm ? rearmMessages(state) : []), build.sync());
  toUpstream(state, out.length === 1 ? out[0]! : Buffer.concat(out));
  let copying = false;
  client.onMessage = (m: Message): boolean => {
    if (copying && (m.type === 'd' || m.type === 'c' || m.type === 'f')) {
      toUpstream(state, m.raw);
      return true;
    }
    if (!raw) return false;
    track(state, m, parsedHere, seen);
    toUpstream(state, m.raw);
    if (TERMINATORS.has(m.type)) {
      expected++;
      raw = false;
    }
    return true;
  };
  // The client's messages that came with the batch (its Sync behind a Flush in the same chunk) or
  // while it was planned are queued already: they go the same way as those still to come.
  if (raw) handOver(client);
  const pending: Message[] = [];
  try {
    while (expected > 0 || raw) {
      const m = upstream.tryNext() ?? (await upstream.next());
      if (m.type === '1' && swallowParseComplete > 0) {
        swallowParseComplete--;
        continue;
      }
      // Only an answer ends the wait for the ParseComplete: a notification (or notice, or parameter
      // change) the server sent before reading the re-created Parse comes first.
      if (!isAsync(m)) swallowParseComplete = 0;
      if (m.type === 'S') recordParameter(state, m);
      else if (m.type === 'G' || m.type === 'W') {
        copying = true;
        handOver(client); // COPY data the client sent without waiting for CopyInResponse
      }
      else if (m.type === 'E') for (const name of parsedHere) state.statements.delete(name);
      else if (isCommit(m)) seen.committed = true;
      else if (m.type === 'Z') {
        expected--;
        copying = false;
        const status = String.fromCharCode(bodyByte(m, 0)!) as SessionState['status'];
        state.status = status;
        if (status === 'I' && !pipelined && announced && announcementsTrusted(state)) {
          // The transaction ended: what it wrote was announced before this ReadyForQuery.
          const fenced = fenceAnnounced(state);
          if (isThenable(fenced)) await fenced;
        } else if (pipelined) {
          // The fence's answer follows this ReadyForQuery (only one terminator in a pipelined batch).
          const read = readInternal(state, (answer) => pending.push(answer));
          const fence = isThenable(read) ? await read : read;
          if (status === 'T' && fence.error !== undefined) {
            // Never expected (the batch was judged to end idle): the fence ran inside the client's
            // transaction and its error aborted it. The client must not go on as if nothing happened.
            // (Inside a transaction the fence's rows are never applied: they may not be committed.)
            throw new Error('lockstep pg-proxy: the pipelined fence failed inside a transaction; closing the connection');
          }
          state.status = fence.status;
          if (status === 'I') {
            // The answers, the fence's notices and the ReadyForQuery go out in one write, unless the
            // fence must be run again on its own (then what came so far goes first, in order).
            if (fence.error !== undefined || fence.status !== 'I') flushTo(state, pending);
            const fenced = fenceAfterIdle(state, fence, rearm);
            if (!(isThenable(fenced) ? await fenced : fenced)) throw new Error('lockstep pg-proxy: could not fence a commit; closing without acknowledging it');
          }
        } else if (status === 'I' && skippable && state.writeMarks === marksBefore) {
          state.ctx.metrics.fencesSkipped++; // nothing written that a fence could find: no statement of the proxy's own
        } else if (status === 'I') {
          flushTo(state, pending);
          if (!(await fenceAfterIdle(state, undefined, selectBatch && shouldRearm(state)))) throw new Error('lockstep pg-proxy: could not fence a commit; closing without acknowledging it');
        }
        // Fenced by the fence statement (or by nothing due): what was announced is covered.
        if (state.status === 'I') forgetAnnounced(state);
        // COMMIT PREPARED commits writes of another backend's transaction: no session's fence saw them
        // (they were not committed then). And a commit the batch made that does not end it idle (COMMIT
        // AND CHAIN, COMMIT; BEGIN) is acknowledged by a ReadyForQuery 'T', where no fence runs (one
        // inside the client's new transaction could take its snapshot, or abort it). In both cases a
        // pass of the drainer that began after the commit reads and applies them before the acknowledgement.
        const drain = (state.status === 'I' && seen.commitsPrepared) || (state.status !== 'I' && seen.committed);
        seen.committed = false;
        if (drain && state.ctx.fence === 'on') {
          flushTo(state, pending);
          try {
            await state.ctx.drainAfter(performance.now());
          } catch {
            throw new Error('lockstep pg-proxy: could not fence a commit with a pass of the drainer; closing without acknowledging it');
          }
          state.ctx.metrics.fencesDrained++;
          seen.commitsPrepared = false;
        }
      }
      pending.push(m);
      if (m.type === 'Z' || (upstream.pending === 0 && !(raw === false && onlyAcknowledgements(pending)))) flushTo(state, pending);
    }
  } finally {
    flushTo(state, pending);
    client.onMessage = undefined;
    state.fingerprint = undefined; // anything relayed may have changed the session's settings
  }
}

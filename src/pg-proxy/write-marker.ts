// The write marker: how a session learns, without a statement of its own, that a batch may have
// written a cached table. The journal's writers (bump and flush, schema.ts) raise a NOTICE when they
// find the session's row in <schema>.sessions not quiet, and make it quiet; the session's upstream
// queue takes the NOTICE out of the stream (the client never sees it), counts it and disarms. A batch
// of plain SELECTs that ends idle while the session is armed and with no marker among its answers
// wrote nothing the fence could find, so its fence is skipped (fence-pipeline.ts, relay.ts); with a
// marker it is fenced as any write. The fence of a batch of SELECTs also rearms (CALL rearm(): the
// row is no longer quiet), so a run of writes costs one NOTICE and a run of reads no fence.
//
// Why a marker cannot be missed while the session is armed: armed means a rearm committed after the
// last marker the session saw, so the row is not quiet; the only writers of `quiet = true` are the
// journal's writers, and they raise the NOTICE in the same call, inside the writing transaction,
// before its ReadyForQuery, under their own client_min_messages = notice; PostgreSQL sends messages
// in order, so the marker is counted before the batch's ReadyForQuery is taken. A write rolled back
// reverts `quiet` too, which only raises the marker again. No role but the schema's owner may write
// the sessions table (an owner or superuser can as well disable the triggers: not defended against).
import { readCString, type Message } from './framing.js';

/** The NOTICE's SQLSTATE and text (any proxy's: a marker raised for another proxy's schema only costs a fence). */
export const WRITE_MARKER_CODE = 'LSW01';
export const WRITE_MARKER_TEXT = 'lockstep pg-proxy: this transaction wrote a cached table';

/** True for the marker NOTICE (fields C and M), false for every other message. */
export function isWriteMarker(m: Message): boolean {
  if (m.type !== 'N') return false;
  const body = m.body;
  let code: string | undefined;
  let text: string | undefined;
  let offset = 0;
  try {
    while (offset < body.length && body[offset] !== 0) {
      const field = body[offset]!;
      const { value, next } = readCString(body, offset + 1);
      if (field === 0x43 /* C */) code = value;
      else if (field === 0x4d /* M */) text = value;
      offset = next;
    }
  } catch {
    return false; // a malformed notice is the client's to see (and not a marker)
  }
  return code === WRITE_MARKER_CODE && text === WRITE_MARKER_TEXT;
}

// The write marker: how a session learns, without a statement of its own, that a batch may have
// written a cached table. Every session of the proxy starts with the setting
// lockstep_proxy.marker = 'armed' (a startup parameter the proxy adds: it is also what RESET ALL and
// DISCARD ALL go back to). The journal's writers (bump and flush, schema.ts) find it 'armed', make it
// 'quiet' and raise a NOTICE; the session's upstream queue takes the NOTICE out of the stream (the
// client never sees it), counts it and disarms. A batch of plain SELECTs that ends idle while the
// session is armed and with no marker among its answers wrote nothing the fence could find, so its
// fence is skipped (fence-pipeline.ts, relay.ts); with a marker it is fenced as any write. The fence
// of a batch of SELECTs also rearms (CALL rearm(): the setting is 'armed' again), so a run of writes
// costs one NOTICE (PostgreSQL flushes each as a packet of its own) and a run of reads no fence.
//
// Why a marker cannot be missed while the session is armed: armed means a rearm (or the session's
// start) committed after the last marker the session saw, so the setting is 'armed'; the journal's
// writers make it 'quiet' only in the same call that raises the NOTICE, inside the writing
// transaction, before its ReadyForQuery, under their own client_min_messages = notice; PostgreSQL
// sends messages in order, so the marker is counted before the batch's ReadyForQuery is taken. A
// write rolled back rolls the setting back too, and RESET ALL makes it 'armed': both only raise the
// marker again. A client that SETs it on purpose silences its own markers: its writes through SELECTs
// are then seen as writes that bypassed the proxy are (within the bypass bound), as if it had written
// straight to PostgreSQL. No table is read or written: serializable transactions see no conflict.
import { readCString, type Message } from './framing.js';

/** The NOTICE's SQLSTATE and text (any proxy's: a marker raised for another proxy's schema only costs a fence). */
export const WRITE_MARKER_CODE = 'LSW01';
export const WRITE_MARKER_TEXT = 'lockstep pg-proxy: this transaction wrote a cached table';

/** The session setting the journal's writers read (custom: no extension defines it). */
export const WRITE_MARKER_SETTING = 'lockstep_proxy.marker';

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

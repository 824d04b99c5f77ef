// The write marker: how a session learns, without a statement of its own, that a batch may have
// written a cached table. The journal's writers (bump and flush, schema.ts) raise one NOTICE per
// transaction, the first time that transaction journals a row; the session's upstream queue takes it
// out of the stream (the client never sees it) and counts it. A batch of plain SELECTs that ends idle
// with no marker among its answers wrote nothing the fence could find, so its fence is skipped
// (fence-pipeline.ts, relay.ts); with a marker it is fenced as any write.
//
// Why the marker cannot be missed: the NOTICE is raised inside the transaction that journals the row,
// before its ReadyForQuery, by a function whose own SET clause makes client_min_messages 'notice'
// (the client's setting cannot hide it); the once-per-transaction flag is a transaction-local setting
// whose value is the transaction's id, so no earlier transaction's flag (and no session-level SET a
// client could guess) silences a later one; an aborted subtransaction reverts it, which only raises
// the marker again.
import { readCString, type Message } from './framing.js';

/** The NOTICE's SQLSTATE and text (any proxy's: a marker raised for another proxy's schema only costs a fence). */
export const WRITE_MARKER_CODE = 'LSW01';
export const WRITE_MARKER_TEXT = 'lockstep pg-proxy: this transaction wrote a cached table';

/** The transaction-local setting that holds the id of the transaction that already raised its marker. */
export const WRITE_MARKER_SETTING = 'lockstep_proxy.marked_xact';

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

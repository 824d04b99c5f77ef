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
//
// Write announcements (LSW02) are the other NOTICE of the proxy's schema: in a session that carries
// the setting above (it cannot be removed, only changed: RESET and DISCARD go back to the startup
// value) every journal row the journal's writers insert is announced, with its id, version, table and
// key. The session takes them out of the stream and, when the transaction ends, applies them instead
// of reading the journal with the fence statement (relay.ts, docs/pg-proxy.md "Announced writes").
import type { Message } from './framing.js';
import type { WrittenRow } from './written-row.js';

/** The NOTICE's SQLSTATE and text (any proxy's: a marker raised for another proxy's schema only costs a fence). */
export const WRITE_MARKER_CODE = 'LSW01';
export const WRITE_MARKER_TEXT = 'lockstep pg-proxy: this transaction wrote a cached table';

/** A write announcement's SQLSTATE and text; its detail is base64 of the JSON [schema, id, version, table, key]. */
export const WRITE_ANNOUNCEMENT_CODE = 'LSW02';
export const WRITE_ANNOUNCEMENT_TEXT = 'lockstep pg-proxy: a journal row';

/** The session setting the journal's writers read (custom: no extension defines it). */
export const WRITE_MARKER_SETTING = 'lockstep_proxy.marker';

/** What a NOTICE of the proxy's is: the write marker, or one journal row of a schema's; undefined for any other message. */
export type ProxyNotice = { readonly kind: 'marker' } | { readonly kind: 'announcement'; readonly schema: string; readonly row: WrittenRow };

const MARKER: ProxyNotice = { kind: 'marker' };

const CODE_FIELD = 0x43; // C
const TEXT_FIELD = 0x4d; // M
const DETAIL_FIELD = 0x44; // D
const MARKER_CODE = Buffer.from(WRITE_MARKER_CODE);
const ANNOUNCEMENT_CODE = Buffer.from(WRITE_ANNOUNCEMENT_CODE);

/** Whether the field's bytes [start, end) are `expected`'s (no string made). */
function fieldIs(body: Buffer, start: number, end: number, expected: Buffer): boolean {
  return end - start === expected.length && body.compare(expected, 0, expected.length, start, end) === 0;
}

/**
 * Reads a NOTICE's fields C, M and D; undefined for any other message, or one the proxy did not raise.
 * Only M and D are decoded (C is compared as bytes), and the reading stops at a code that is not the
 * proxy's (PostgreSQL sends C before M and D): an announcement also carries a CONTEXT of some hundred
 * bytes and the server's file, line and routine, per written row, and a client's notice is not read further.
 */
export function proxyNotice(m: Message): ProxyNotice | undefined {
  if (m.type !== 'N') return undefined;
  const body = m.body;
  let code: 'marker' | 'announcement' | undefined;
  let text: string | undefined;
  let detail: string | undefined;
  let offset = 0;
  while (offset < body.length && body[offset] !== 0) {
    const field = body[offset]!;
    const end = body.indexOf(0, offset + 1);
    if (end < 0) return undefined; // a malformed notice is the client's to see (and not ours)
    if (field === CODE_FIELD) {
      if (fieldIs(body, offset + 1, end, MARKER_CODE)) code = 'marker';
      else if (fieldIs(body, offset + 1, end, ANNOUNCEMENT_CODE)) code = 'announcement';
      else return undefined;
    } else if (field === TEXT_FIELD) text = body.toString('utf8', offset + 1, end);
    else if (field === DETAIL_FIELD) detail = body.toString('utf8', offset + 1, end);
    offset = end + 1;
  }
  if (code === 'marker' && text === WRITE_MARKER_TEXT) return MARKER;
  if (code !== 'announcement' || text !== WRITE_ANNOUNCEMENT_TEXT || detail === undefined) return undefined;
  return announcementOf(detail);
}

/** The row of an announcement's detail; undefined when it is not one (then the notice is the client's). */
function announcementOf(detail: string): ProxyNotice | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(detail, 'base64').toString('utf8'));
  } catch {
    return undefined;
  }
  if (!Array.isArray(parsed) || parsed.length !== 5) return undefined;
  const [schema, id, version, table, key] = parsed as unknown[];
  if (typeof schema !== 'string' || typeof id !== 'number' || typeof version !== 'number' || typeof table !== 'string' || (key !== null && typeof key !== 'string')) return undefined;
  return { kind: 'announcement', schema, row: { id, table, key, version } };
}

/** True for the marker NOTICE (fields C and M), false for every other message. */
export function isWriteMarker(m: Message): boolean {
  return proxyNotice(m)?.kind === 'marker';
}

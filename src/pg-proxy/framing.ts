// PostgreSQL wire framing: splits a byte stream into messages (1-byte type + int32 length + body),
// keeping each message's raw bytes so that what is relayed is byte-identical, and builds the few
// messages the proxy itself sends. Limits every size: a frame longer than MAX_MESSAGE_BYTES ends the session.

/** Upper bound on one message (PostgreSQL's own limit for most messages is 1 GB; COPY rows pass in pieces). */
export const MAX_MESSAGE_BYTES = 256 * 1024 * 1024;

export interface Message {
  /** The type byte as a one-character string ('Q', 'D', …). */
  readonly type: string;
  /** The body after the length word. */
  readonly body: Buffer;
  /** The whole frame, type byte included. */
  readonly raw: Buffer;
}

export class FrameError extends Error {}

/**
 * A received message: bytes start..end of the chunk it was framed from. Its raw and body views are
 * made on first use: most relayed messages read neither, and go out with their neighbours as one
 * view of the chunk (joinMessages).
 */
class Frame implements Message {
  private rawView: Buffer | undefined;
  private bodyView: Buffer | undefined;
  constructor(
    readonly type: string,
    readonly chunk: Buffer,
    readonly start: number,
    readonly end: number,
  ) {}
  get raw(): Buffer {
    return (this.rawView ??= this.chunk.subarray(this.start, this.end));
  }
  get body(): Buffer {
    return (this.bodyView ??= this.chunk.subarray(this.start + 5, this.end));
  }
}

/** A message's length in bytes, type byte included (without making a view of a received one). */
export function byteLength(m: Message): number {
  return m instanceof Frame ? m.end - m.start : m.raw.length;
}

/** The byte at `offset` of a message's body (without making a view of a received one); undefined past its end. */
export function bodyByte(m: Message, offset: number): number | undefined {
  if (!(m instanceof Frame)) return m.body[offset];
  const at = m.start + 5 + offset;
  return at < m.end ? m.chunk[at] : undefined;
}

/**
 * The statement name of a Bind's body (after its portal name), '' when both names are empty (most
 * drivers' every batch) without decoding either.
 */
export function bindStatementName(body: Buffer): string {
  if (body[0] === 0 && body[1] === 0) return '';
  return readCString(body, readCString(body, 0).next).value;
}

/** The C string at the start of a body ('' without decoding when it is empty: an unnamed portal or statement). */
export function leadingCString(body: Buffer): string {
  return body[0] === 0 ? '' : readCString(body, 0).value;
}

/**
 * The messages' bytes, in order, as one buffer: a single view of the chunk they were received in
 * when they lie back to back in it (a client's batch, a server's answers to it), else a copy.
 */
export function joinMessages(messages: readonly Message[]): Buffer {
  const first = messages[0];
  if (first === undefined) return Buffer.alloc(0);
  if (messages.length === 1) return first.raw;
  if (first instanceof Frame) {
    let end = first.end;
    let i = 1;
    for (; i < messages.length; i++) {
      const m = messages[i];
      if (!(m instanceof Frame) || m.chunk !== first.chunk || m.start !== end) break;
      end = m.end;
    }
    if (i === messages.length) return first.chunk.subarray(first.start, end);
  }
  return Buffer.concat(messages.map((m) => m.raw));
}

/** No bytes (shared: never written to). */
const EMPTY = Buffer.alloc(0);

/** Accumulates chunks and yields complete typed messages. */
export class MessageReader {
  private buffer: Buffer = EMPTY;
  /**
   * The chunks of a message that is not complete yet (its header read), joined once when it is:
   * joining at every chunk would copy a long message over and over (quadratic in its length).
   */
  private parts: Buffer[] = [];
  private partsBytes = 0;
  private wanted = 0;

  /** The longest message accepted (a longer one's header is a FrameError); at most MAX_MESSAGE_BYTES. */
  maxMessageBytes = MAX_MESSAGE_BYTES;

  push(chunk: Buffer): Message[] {
    return this.pushInto(chunk, []);
  }

  /** push(), appending the messages to `out` (an array the caller reuses: no array per chunk). */
  pushInto(chunk: Buffer, out: Message[]): Message[] {
    if (this.wanted > 0) {
      this.parts.push(chunk);
      this.partsBytes += chunk.length;
      if (this.partsBytes < this.wanted) return out;
      this.buffer = Buffer.concat(this.parts, this.partsBytes);
      this.parts = [];
      this.partsBytes = 0;
      this.wanted = 0;
    } else this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    let offset = 0;
    while (this.buffer.length - offset >= 5) {
      const length = this.buffer.readInt32BE(offset + 1);
      if (length < 4 || length > this.maxMessageBytes) throw new FrameError(`invalid message length ${length}`);
      if (this.buffer.length - offset < 1 + length) break;
      out.push(new Frame(String.fromCharCode(this.buffer[offset]!), this.buffer, offset, offset + 1 + length));
      offset += 1 + length;
    }
    this.buffer = offset === this.buffer.length ? EMPTY : this.buffer.subarray(offset);
    if (this.buffer.length >= 5) {
      // A message whose header came (its length checked above) but not all of its bytes.
      this.wanted = 1 + this.buffer.readInt32BE(1);
      this.parts = [this.buffer];
      this.partsBytes = this.buffer.length;
      this.buffer = EMPTY;
    }
    return out;
  }

  /** Bytes received but not yet framed (handed over when a session switches to a plain pipe). */
  rest(): Buffer {
    const rest = this.wanted > 0 ? Buffer.concat(this.parts, this.partsBytes) : this.buffer;
    this.buffer = EMPTY;
    this.parts = [];
    this.partsBytes = 0;
    this.wanted = 0;
    return rest;
  }
}

/** Reads the untyped first message of a connection (startup, SSLRequest, CancelRequest). */
export function readStartupFrame(buffer: Buffer): { frame: Buffer; rest: Buffer } | undefined {
  if (buffer.length < 4) return undefined;
  const length = buffer.readInt32BE(0);
  if (length < 8 || length > 10_000) throw new FrameError(`invalid startup length ${length}`);
  if (buffer.length < length) return undefined;
  return { frame: buffer.subarray(0, length), rest: buffer.subarray(length) };
}

export const SSL_REQUEST_CODE = 80877103;
export const GSSENC_REQUEST_CODE = 80877104;
export const CANCEL_REQUEST_CODE = 80877102;

/** The startup message's parameters (user, database, options, …). */
export function startupParameters(frame: Buffer): Map<string, string> {
  const params = new Map<string, string>();
  let offset = 8;
  while (offset < frame.length) {
    const keyEnd = frame.indexOf(0, offset);
    if (keyEnd <= offset) break;
    const valueEnd = frame.indexOf(0, keyEnd + 1);
    if (valueEnd < 0) break;
    params.set(frame.toString('utf8', offset, keyEnd), frame.toString('utf8', keyEnd + 1, valueEnd));
    offset = valueEnd + 1;
  }
  return params;
}

/** PostgreSQL's largest startup message (MAX_STARTUP_PACKET_LENGTH): a longer one is refused without an answer. */
export const MAX_STARTUP_LENGTH = 10_000;

/**
 * The startup message with the parameter `name` set to `value`, the client's own pairs kept byte for
 * byte (names and values need not be UTF-8) except one of that name; undefined when the message is
 * malformed or the pair would take it past MAX_STARTUP_LENGTH (then it goes up as it came).
 */
export function withStartupParameter(startup: Buffer, name: string, value: string): Buffer | undefined {
  const key = Buffer.from(name, 'utf8');
  const parts: Buffer[] = [Buffer.alloc(4), startup.subarray(4, 8)];
  let offset = 8;
  for (;;) {
    if (offset >= startup.length) return undefined; // no terminator
    const keyEnd = startup.indexOf(0, offset);
    if (keyEnd < 0) return undefined;
    if (keyEnd === offset) break; // the list's terminator
    const valueEnd = startup.indexOf(0, keyEnd + 1);
    if (valueEnd < 0) return undefined;
    if (!startup.subarray(offset, keyEnd).equals(key)) parts.push(startup.subarray(offset, valueEnd + 1));
    offset = valueEnd + 1;
  }
  parts.push(key, NUL, Buffer.from(value, 'utf8'), NUL, NUL);
  const message = Buffer.concat(parts);
  if (message.length > MAX_STARTUP_LENGTH) return undefined;
  message.writeInt32BE(message.length, 0);
  return message;
}

const NUL = Buffer.from([0]);

function frame(type: string, body: Buffer): Buffer {
  const header = Buffer.alloc(5);
  header.write(type, 0, 'latin1');
  header.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([header, body]);
}

function cstring(text: string): Buffer {
  return Buffer.concat([Buffer.from(text, 'utf8'), Buffer.from([0])]);
}

function int16(value: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeInt16BE(value);
  return b;
}

function int32(value: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32BE(value);
  return b;
}

const SYNC = frame('S', Buffer.alloc(0));

export const build = {
  readyForQuery: (status: 'I' | 'T' | 'E'): Buffer => frame('Z', Buffer.from(status, 'latin1')),
  /** An ErrorResponse with severity FATAL or ERROR, a SQLSTATE and a message. */
  error: (severity: 'ERROR' | 'FATAL', code: string, message: string): Buffer =>
    frame('E', Buffer.concat([Buffer.from('S'), cstring(severity), Buffer.from('V'), cstring(severity), Buffer.from('C'), cstring(code), Buffer.from('M'), cstring(message), Buffer.from([0])])),
  close: (kind: 'S' | 'P', name: string): Buffer => frame('C', Buffer.concat([Buffer.from(kind), cstring(name)])),
  parse: (name: string, sql: string): Buffer => frame('P', Buffer.concat([cstring(name), cstring(sql), int16(0)])),
  /** Bind with text parameters (null for SQL NULL) and text results. One allocation: the fence binds one after nearly every batch. */
  bind: (portal: string, statement: string, values: readonly (string | null)[]): Buffer => {
    const portalBytes = Buffer.byteLength(portal);
    const statementBytes = Buffer.byteLength(statement);
    const valueBytes = values.map((v) => (v === null ? -1 : Buffer.byteLength(v)));
    let length = 4 + portalBytes + 1 + statementBytes + 1 + 2 + 2 + 2;
    for (const bytes of valueBytes) length += 4 + Math.max(bytes, 0);
    const out = Buffer.allocUnsafe(1 + length);
    out[0] = 0x42; // 'B'
    out.writeInt32BE(length, 1);
    let at = 5 + out.write(portal, 5, 'utf8');
    out[at++] = 0;
    at += out.write(statement, at, 'utf8');
    out[at++] = 0;
    at = out.writeInt16BE(0, at);
    at = out.writeInt16BE(values.length, at);
    values.forEach((v, i) => {
      at = out.writeInt32BE(valueBytes[i]!, at);
      if (v !== null) at += out.write(v, at, 'utf8');
    });
    out.writeInt16BE(0, at);
    return out;
  },
  execute: (portal: string): Buffer => frame('E', Buffer.concat([cstring(portal), int32(0)])),
  /** The same (never written to) buffer every time. */
  sync: (): Buffer => SYNC,
  terminate: (): Buffer => frame('X', Buffer.alloc(0)),
};

/** Text columns of a DataRow body (null for SQL NULL). */
export function dataRowTexts(body: Buffer): (string | null)[] {
  const count = body.readInt16BE(0);
  const values: (string | null)[] = [];
  let offset = 2;
  for (let i = 0; i < count; i++) {
    const length = body.readInt32BE(offset);
    offset += 4;
    if (length < 0) values.push(null);
    else {
      values.push(body.toString('utf8', offset, offset + length));
      offset += length;
    }
  }
  return values;
}

/** A C string at `offset` and the offset after its terminator. */
export function readCString(body: Buffer, offset: number): { value: string; next: number } {
  const end = body.indexOf(0, offset);
  if (end < 0) throw new FrameError('unterminated string');
  return { value: body.toString('utf8', offset, end), next: end + 1 };
}

/** The SQLSTATE (field 'C') of an ErrorResponse body. */
export function errorCode(body: Buffer): string | undefined {
  let offset = 0;
  while (offset < body.length && body[offset] !== 0) {
    const field = String.fromCharCode(body[offset]!);
    const { value, next } = readCString(body, offset + 1);
    if (field === 'C') return value;
    offset = next;
  }
  return undefined;
}

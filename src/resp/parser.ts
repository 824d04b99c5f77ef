// Reads RESP requests from a byte stream: multibulk arrays of bulk strings (`*2\r\n$3\r\nGET\r\n…`,
// what every client sends) and inline commands (`PING\r\n`, what telnet sends). Hand-written on
// purpose: the npm RESP parsers (redis-parser, respjs, node-redis' decoder) parse *replies* for a
// client, not requests for a server, and redis-parser is unmaintained since 2018; a request has
// one shape only, so this is a small, bounded state machine with every size checked before any
// byte is buffered for it.

import { splitInlineArgs } from './inline-args.js';

/** A malformed or oversized request: the connection answers `-ERR Protocol error: …` and closes. */
export class ProtocolError extends Error {}

/** An HTTP request (or a known cross-protocol probe) on the RESP port: close without answering. */
export class CrossProtocolError extends Error {}

export interface ParserLimits {
  /** Largest bulk string (a key or a value), in bytes. */
  readonly maxBulkBytes: number;
  /** Most arguments in one command (the name counts). */
  readonly maxArgs: number;
  /** Longest inline command or header line (`*N`, `$N`), in bytes. */
  readonly maxInlineBytes: number;
}

const CR = 13;
const LF = 10;
const EMPTY = Buffer.alloc(0);
/** The longest count or length line of a multibulk command, before its CR (an int64 and its sign fit). */
const MAX_HEADER_CHARS = 32;

/** Before AUTH (when tokens are configured), as Redis 7: a stranger may not make us buffer much. */
export const UNAUTHENTICATED_LIMITS: ParserLimits = Object.freeze({ maxBulkBytes: 16_384, maxArgs: 10, maxInlineBytes: 16_384 });

export class RequestParser {
  /** Set while the connection has not authenticated and must: the tighter limits apply. */
  unauthenticated = false;
  private buf: Buffer = EMPTY;
  private pos = 0;
  /** Chunks not yet joined to `buf`, while a known number of bytes (`need`) is still missing. */
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private need = 0;
  /**
   * A multibulk command being received: the arguments parsed so far, how many are still to come
   * (-1: none is being received) and the bytes they took. The parser resumes at the next argument
   * instead of parsing the command again from its start, so a client that trickles small
   * arguments after a large one costs a copy of the argument being received, not of the command.
   */
  /**
   * The last next() stopped at an inline command whose end has not arrived: until a chunk brings an
   * LF (or the line grows past the inline limit), joining the chunks could not complete anything, and
   * a line trickled a byte at a time was joined again per byte. (A multibulk header line is at most
   * 33 bytes, line(): it is joined as it comes, and refused as soon as it is too long.)
   */
  private waitingForLine = false;
  private pendingHasLf = false;
  private partArgs: Buffer[] = [];
  /**
   * How many of partArgs were looked at when `buf` was last joined into a new buffer. A view into the
   * old one that is a small part of it is copied out then, or the old buffer, with the start of the
   * argument in progress that the new one holds again, stayed alive for it (up to about twice the
   * bytes `buffered` counts); a view that is most of its buffer is kept (copying 1 MiB values again
   * doubled the parser's copying for large commands).
   */
  private partArgsCopied = 0;
  private partLeft = -1;
  private partBytes = 0;

  constructor(private readonly configured: ParserLimits) {}

  private get limits(): ParserLimits {
    return this.unauthenticated ? UNAUTHENTICATED_LIMITS : this.configured;
  }

  /** Bytes received and not yet consumed by a complete command. */
  get buffered(): number {
    return this.buf.length - this.pos + this.pendingBytes + this.partBytes;
  }

  /** Drops every byte held (an evicted connection: nothing more of it is parsed). */
  discard(): void {
    this.buf = EMPTY;
    this.pos = 0;
    this.pending = [];
    this.pendingBytes = 0;
    this.need = 0;
    this.partArgs = [];
    this.partArgsCopied = 0;
    this.partLeft = -1;
    this.partBytes = 0;
    this.waitingForLine = false;
    this.pendingHasLf = false;
  }

  push(chunk: Buffer): void {
    if (this.buf.length - this.pos === 0 && this.pendingBytes === 0) {
      this.buf = chunk;
      this.pos = 0;
      return;
    }
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    if (!this.pendingHasLf && chunk.includes(LF)) this.pendingHasLf = true;
  }

  /** The next complete command's arguments, or undefined when more bytes are needed. Throws ProtocolError / CrossProtocolError. */
  next(): Buffer[] | undefined {
    if (this.pendingBytes > 0) {
      // A large value arriving in many chunks is joined once, not once per chunk.
      const have = this.buf.length - this.pos + this.pendingBytes;
      if (have < this.need) return undefined;
      if (this.waitingForLine && !this.pendingHasLf && have <= this.limits.maxInlineBytes) return undefined;
      for (; this.partArgsCopied < this.partArgs.length; this.partArgsCopied++) {
        const arg = this.partArgs[this.partArgsCopied]!;
        // Only an argument that is a small part of its buffer: a large one keeps at most as much again alive.
        if (arg.length * 2 < arg.buffer.byteLength) this.partArgs[this.partArgsCopied] = Buffer.from(arg);
      }
      this.buf = Buffer.concat([this.buf.subarray(this.pos), ...this.pending]);
      this.pendingHasLf = false;
      this.pos = 0;
      this.pending = [];
      this.pendingBytes = 0;
    }
    this.waitingForLine = false;
    for (;;) {
      if (this.pos >= this.buf.length) return undefined;
      const args = this.partLeft >= 0 || this.buf[this.pos] === 0x2a /* '*' */ ? this.multibulk() : this.inline();
      if (args === undefined) return undefined;
      if (args.length > 0) return args;
      // `*0\r\n`, `*-1\r\n` and blank inline lines are skipped, as Redis does.
    }
  }

  private multibulk(): Buffer[] | undefined {
    if (this.partLeft < 0) {
      const header = this.line(this.pos + 1, 'multibulk count');
      if (header === undefined) return this.incomplete(this.pos, 0);
      const count = parseCount(header.text, 'invalid multibulk length');
      if (count > this.limits.maxArgs) throw new ProtocolError(`${this.unauthenticated ? 'unauthenticated' : 'invalid'} multibulk length (more than ${this.limits.maxArgs} arguments)`);
      this.partBytes += header.next - this.pos;
      this.pos = header.next;
      this.partLeft = count;
    }
    // Each argument parsed is kept and the buffer cut after it: what is joined again when more
    // bytes arrive is the argument in progress only.
    while (this.partLeft > 0) {
      const at = this.pos;
      if (at >= this.buf.length) return this.incomplete(at, at + 1);
      if (this.buf[at] !== 0x24 /* '$' */) throw new ProtocolError(`expected '$', got '${String.fromCharCode(this.buf[at]!)}'`);
      const size = this.line(at + 1, 'bulk length');
      if (size === undefined) return this.incomplete(at, 0);
      const length = parseCount(size.text, 'invalid bulk length', false);
      if (length > this.limits.maxBulkBytes) throw new ProtocolError(`${this.unauthenticated ? 'unauthenticated' : 'invalid'} bulk length (larger than ${this.limits.maxBulkBytes} bytes)`);
      const end = size.next + length;
      if (end + 2 > this.buf.length) return this.incomplete(at, end + 2);
      if (this.buf[end] !== CR || this.buf[end + 1] !== LF) throw new ProtocolError('bulk string not terminated by CRLF');
      this.partArgs.push(this.buf.subarray(size.next, end));
      this.partBytes += end + 2 - at;
      this.pos = end + 2;
      this.partLeft--;
    }
    const args = this.partArgs;
    this.partArgs = [];
    this.partArgsCopied = 0;
    this.partLeft = -1;
    this.partBytes = 0;
    this.need = 0;
    return args;
  }

  private inline(): Buffer[] | undefined {
    const newline = this.buf.indexOf(LF, this.pos);
    if (newline === -1) {
      if (this.buf.length - this.pos > this.limits.maxInlineBytes) throw new ProtocolError('too big inline request');
      return this.incompleteLine(this.pos);
    }
    if (newline - this.pos > this.limits.maxInlineBytes) throw new ProtocolError('too big inline request');
    const end = newline > this.pos && this.buf[newline - 1] === CR ? newline - 1 : newline;
    const text = this.buf.toString('latin1', this.pos, end);
    this.pos = newline + 1;
    this.need = 0;
    // The HTTP check looks at the plain words first: a request line with a stray quote is still closed unanswered.
    if (looksLikeHttp(text.split(/[ \t]+/).filter((w) => w.length > 0))) throw new CrossProtocolError('an HTTP request was sent to the RESP port');
    const words = splitInlineArgs(text);
    if (words === undefined) throw new ProtocolError('unbalanced quotes in request');
    if (words.length > this.limits.maxArgs) throw new ProtocolError(`too many arguments in an inline request (more than ${this.limits.maxArgs})`);
    return words.map((w) => Buffer.from(w, 'latin1'));
  }

  /** The `\r\n`-terminated line starting at `from`, or undefined when it has not fully arrived. */
  private line(from: number, what: string): { text: string; next: number } | undefined {
    const cr = this.buf.indexOf(CR, from);
    // A count or a length is at most 32 characters: more without a CR is refused at once (waiting
    // for the inline limit let a client trickle LFs into a line that was joined again per byte).
    if (cr === -1 || cr - from > MAX_HEADER_CHARS) {
      if (this.buf.length - from > MAX_HEADER_CHARS) throw new ProtocolError(`too big ${what} string`);
      return undefined;
    }
    if (cr + 1 >= this.buf.length) return undefined;
    if (this.buf[cr + 1] !== LF) throw new ProtocolError(`${what} not terminated by CRLF`);
    return { text: this.buf.toString('latin1', from, cr), next: cr + 2 };
  }

  /** As incomplete(), stopped at an inline command whose end has not arrived. */
  private incompleteLine(start: number): undefined {
    this.waitingForLine = true;
    return this.incomplete(start, 0);
  }

  private incomplete(start: number, need: number): undefined {
    // Keep the partial command; remember how many bytes it needs at least, so push() can wait for them.
    this.need = need === 0 ? 0 : need - start;
    if (start > 0) {
      this.buf = this.buf.subarray(start);
      this.pos = 0;
    }
    return undefined;
  }
}

/** A header's count; a negative multibulk count is an empty command (skipped), a negative bulk length an error. */
function parseCount(text: string, message: string, negativeAllowed = true): number {
  if (!(negativeAllowed ? /^-?[0-9]{1,18}$/ : /^[0-9]{1,18}$/).test(text)) throw new ProtocolError(message);
  const n = Number(text);
  return n < 0 ? 0 : n;
}

/** `GET / HTTP/1.1`, `POST …`, `Host: …`: Redis closes such connections (a browser or SSRF probe), and so do we. */
function looksLikeHttp(words: readonly string[]): boolean {
  const first = words[0]?.toLowerCase();
  if (first === 'post' || first === 'host:') return true;
  const last = words[words.length - 1];
  return words.length >= 3 && last !== undefined && /^HTTP\/[0-9]/i.test(last);
}

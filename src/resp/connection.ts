// One client connection: bytes in → commands, run one at a time in arrival order (a pipeline's
// effects apply in order, as on Redis) → replies out, batched into one write per burst. Reading
// stops while too many request bytes wait (pipelining backpressure) or while the socket's send
// buffer is full; a malformed request is answered and the connection closed; an HTTP request is
// closed without an answer.
import { once } from 'node:events';
import type { Socket } from 'node:net';
import { commandName, dispatch } from './commands/table.js';
import type { CommandContext, FrontInfo } from './commands/context.js';
import { errorReply } from './errors.js';
import type { ResolvedRespOptions } from './options.js';
import { CrossProtocolError, ProtocolError, RequestParser } from './parser.js';
import { encode, error } from './replies.js';
import type { LockstepService } from './service-port.js';
import type { QueryHolder } from './query-budget.js';
import { createSession } from './session.js';
import { runsNothing } from './refused-multi.js';

/** Replies kept before a write even though more pipelined commands are waiting. */
const MAX_BATCHED_PARTS = 512;
/**
 * Reply bytes kept before a write (then the send buffer's backpressure applies): 512 GETs of a
 * 1 MiB value must not sit in memory together, nor be joined past V8's longest string.
 */
const MAX_BATCHED_BYTES = 64 * 1024;
/**
 * Unread request bytes kept before AUTH (when tokens are configured): more than the largest
 * command the unauthenticated limits allow (10 arguments of 16 KiB), far less than the
 * authenticated query buffer, so 1000 strangers that pipeline and never read cannot hold gigabytes.
 */
const UNAUTHENTICATED_QUERY_BUFFER_BYTES = 256 * 1024;
/** How long an evicted connection may stay half open for its error to reach the client. */
const EVICTED_LINGER_MS = 1000;

export interface Connection {
  /** Stops reading; closes once the command running (if any) has answered. */
  drain(): void;
  destroy(): void;
}

export function serveConnection(socket: Socket, service: LockstepService, options: ResolvedRespOptions, front: FrontInfo): Connection {
  const session = createSession(`${socket.remoteAddress ?? '?'}:${socket.remotePort ?? 0}`, `${socket.localAddress ?? '?'}:${socket.localPort ?? 0}`);
  const ctx: CommandContext = { service, options, session, front, now: Date.now, hold: { bytes: 0 } };
  const parser = new RequestParser(options);
  const mustAuth = options.principals.length > 0;
  parser.unauthenticated = mustAuth;
  let running = false;
  let draining = false;
  let broken = false;
  const queryLimit = (): number => (parser.unauthenticated ? Math.min(UNAUTHENTICATED_QUERY_BUFFER_BYTES, options.maxQueryBufferBytes) : options.maxQueryBufferBytes);

  socket.setNoDelay(true);
  // Idle means no complete command and no reply for idleTimeoutMs, not "no byte": a client that
  // trickles an unfinished command one byte at a time (slowloris) must not hold its slot forever.
  let idleTimer: NodeJS.Timeout | undefined;
  const progressed = (): void => {
    if (options.idleTimeoutMs <= 0 || socket.destroyed) return;
    clearTimeout(idleTimer);
    idleTimer = setTimeout(() => socket.destroy(), options.idleTimeoutMs);
    idleTimer.unref();
  };
  progressed();
  socket.once('close', () => clearTimeout(idleTimer));
  socket.on('error', () => undefined); // a reset by the peer; 'close' follows
  // This connection's share of the front's unread request bytes (query-budget.ts).
  const queries: QueryHolder = {
    held: 0,
    evict(limit) {
      // Nothing more of it runs (not even commands already parsed), and what it held goes now.
      broken = true;
      parser.discard();
      socket.pause();
      socket.end(`-ERR client evicted: the unread requests of all connections are over maxTotalQueryBufferBytes (${limit} bytes)\r\n`, () => socket.destroy());
      const linger = setTimeout(() => socket.destroy(), EVICTED_LINGER_MS);
      linger.unref();
      socket.once('close', () => clearTimeout(linger));
    },
  };
  front.queries.add(queries);
  socket.once('close', () => front.queries.release(queries));
  socket.on('data', (chunk: Buffer) => {
    if (broken || session.closing) return; // a protocol error or QUIT was answered: nothing more is read
    parser.push(chunk);
    front.queries.set(queries, parser.buffered);
    if (broken) return; // evicted: it held the most when the front went over its total
    if (parser.buffered > queryLimit()) socket.pause();
    pump().catch((caught: unknown) => {
      // A bug here must cost this connection, never the process (an unhandled rejection would).
      options.onUnexpectedError(caught);
      socket.destroy();
    });
  });

  // The front's reply budget (service/reply-budget.ts): what the replies in `out` hold, then what the socket
  // holds until it has handed their bytes to the kernel. A closed socket gives everything back.
  let heldInOut = 0;
  let heldInSocket = 0;
  socket.once('close', () => {
    front.replies.give(heldInOut + heldInSocket);
    heldInOut = 0;
    heldInSocket = 0;
  });
  const sent = (bytes: number) => (): void => {
    if (socket.destroyed) return; // 'close' gave it back
    heldInSocket -= bytes;
    front.replies.give(bytes);
  };

  let outBytes = 0;
  const write = (out: Array<string | Buffer>): void => {
    if (out.length === 0 || socket.destroyed || socket.writableEnded) return; // evicted: its error was the last word
    progressed();
    const small = outBytes <= MAX_BATCHED_BYTES;
    outBytes = 0;
    const held = heldInOut;
    heldInOut = 0;
    heldInSocket += held;
    const done = held > 0 ? sent(held) : undefined;
    if (small && out.every((part) => typeof part === 'string')) socket.write(out.join(''), done);
    else {
      socket.cork();
      for (let i = 0; i < out.length; i++) socket.write(out[i]!, i === out.length - 1 ? done : undefined);
      socket.uncork();
    }
    out.length = 0;
  };

  async function pump(): Promise<void> {
    if (running) return;
    running = true;
    const out: Array<string | Buffer> = [];
    try {
      // Once draining (shutdown), the command running finishes and answers; queued ones do not start.
      while (!socket.destroyed && !draining && !broken) {
        let args: Buffer[] | undefined;
        try {
          args = parser.next();
          // One command that does not fit the query buffer would wait for bytes that never come (reading is paused).
          if (args === undefined && parser.buffered > queryLimit()) {
            throw new ProtocolError(`query buffer over the limit (${queryLimit()} bytes)`);
          }
        } catch (caught) {
          broken = true;
          if (caught instanceof ProtocolError) {
            encode(error(`ERR Protocol error: ${caught.message}`), session.protocol, out);
            write(out);
            socket.end();
          } else {
            // CrossProtocolError: an HTTP client gets nothing that could be read as a response.
            if (!(caught instanceof CrossProtocolError)) options.onUnexpectedError(caught);
            socket.destroy();
          }
          return;
        }
        if (args === undefined) break;
        front.queries.set(queries, parser.buffered);
        progressed();
        let reply = runsNothing(session, commandName(args)) ? undefined : front.throttle(session, socket.remoteAddress ?? '');
        if (reply === undefined) {
          try {
            const pending = dispatch(ctx, args);
            reply = pending instanceof Promise ? await pending : pending;
          } catch (caught) {
            reply = errorReply(caught, options.onUnexpectedError);
            front.replies.give(ctx.hold.bytes); // an error reply holds no value
            ctx.hold.bytes = 0;
          }
          if (socket.destroyed) front.replies.give(ctx.hold.bytes); // 'close' has run: nothing will send it
          else heldInOut += ctx.hold.bytes;
          ctx.hold.bytes = 0;
        }
        const first = out.length;
        encode(reply, session.protocol, out);
        for (let i = first; i < out.length; i++) outBytes += out[i]!.length;
        parser.unauthenticated = mustAuth && session.principal === undefined;
        if (session.closing) {
          // As Redis: the reply, then the connection closes; what was sent after QUIT never runs,
          // and a client that keeps its side open does not keep the connection.
          write(out);
          socket.end(() => socket.destroy());
          return;
        }
        if (out.length >= MAX_BATCHED_PARTS || outBytes >= MAX_BATCHED_BYTES) write(out);
        if (socket.writableNeedDrain) {
          write(out);
          await drained(socket);
        }
      }
      write(out);
    } finally {
      running = false;
    }
    if (draining) socket.end();
    else if (!broken && socket.isPaused() && parser.buffered <= queryLimit()) socket.resume();
  }

  return {
    drain() {
      draining = true;
      socket.pause();
      if (!running) socket.end();
    },
    destroy: () => socket.destroy(),
  };
}

/** Resolves when the send buffer has room again, or the socket is gone. */
async function drained(socket: Socket): Promise<void> {
  const controller = new AbortController();
  await Promise.race([once(socket, 'drain', { signal: controller.signal }), once(socket, 'close', { signal: controller.signal })]).catch(() => undefined);
  controller.abort();
}

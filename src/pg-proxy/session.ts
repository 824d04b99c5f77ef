// One client session: its own upstream connection (session pooling), authentication relayed, then
// batches of client messages handled one at a time, in order: a cacheable point read is answered
// from the cache or filled (read-path.ts), everything else is relayed unchanged (relay.ts), and every
// acknowledgement of a commit waits for the fence (fence.ts).
import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import { build, CANCEL_REQUEST_CODE, errorCode, GSSENC_REQUEST_CODE, MAX_MESSAGE_BYTES, readStartupFrame, SSL_REQUEST_CODE, startupParameters, withStartupParameter, type Message } from './framing.js';
import { MessageQueue } from './message-queue.js';
import { toClient, toUpstream } from './backpressure.js';
import type { ProxyContext } from './context.js';
import type { SessionState } from './state.js';
import { recordParameter } from './state.js';
import { noteAnnouncement, openCursor } from './session-fence.js';
import { proxyNotice, WRITE_MARKER_SETTING } from './write-marker.js';
import { runBatches } from './session-loop.js';
import { acceptTls } from './client-tls.js';
import { connectSessionUpstream, UpstreamTlsError } from './upstream-tls.js';
import { relayCancel } from './cancel.js';
import { pipeWithoutChannelBinding, withoutChannelBinding } from './sasl.js';
import { HoldReadyForQuery } from './drained-pipe.js';

/**
 * The longest message a client may send before it is authenticated: PostgreSQL's own limit on an
 * authentication message (PG_MAX_AUTH_TOKEN_LENGTH, 65,535 bytes of body) and its header.
 */
export const MAX_UNAUTHENTICATED_MESSAGE_BYTES = 65_535 + 4;

export interface SessionHooks {
  isDraining(): boolean;
  /** Registers a live session; returns its unregister function. */
  register(state: SessionState): () => void;
}

/** Handles one accepted client socket until it closes (a CancelRequest is relayed and closed). */
export async function handleConnection(ctx: ProxyContext, socket: Socket, hooks: SessionHooks): Promise<void> {
  socket.setNoDelay(true);
  let upstreamSocket: Socket | undefined;
  let backendPid: number | undefined;
  try {
    let startup;
    try {
      startup = await readStartup(ctx, socket);
    } catch (error) {
      // Unencrypted, as libpq sends it: PostgreSQL takes a cancel before any TLS or pg_hba.conf check.
      if (error instanceof CancelRequest) await relayCancel(ctx.upstream, error.frame);
      return;
    }
    const { frame, rest } = startup;
    socket = startup.socket;
    if (ctx.clientTls?.required === true && !(socket instanceof TLSSocket)) {
      socket.end(build.error('FATAL', '28000', 'the proxy accepts only TLS connections: connect with sslmode=require or stricter'));
      return;
    }
    const params = startupParameters(frame);
    const database = startupDatabase(params);
    // A client that leaves before its session is set up takes its upstream connection with it:
    // nothing else ends a wait for a PostgreSQL slow to answer the startup (overloaded, stopped), and
    // a session that began listening after the client had gone waited for its first message for good,
    // holding a backend.
    const leave = (): void => void upstreamSocket?.destroy();
    socket.once('close', leave);
    upstreamSocket = await connectOrTell(ctx, socket);
    if (upstreamSocket === undefined || socket.destroyed) return;
    if (hooks.isDraining()) {
      socket.end(build.error('FATAL', '57P03', 'the proxy is shutting down'));
      return;
    }
    // Another database, or a replication connection: a plain pipe, nothing cached.
    if (database !== postgresName(ctx.upstream.database) || params.has('replication')) {
      ctx.metrics.passThrough['other-database']++;
      upstreamSocket.write(frame);
      if (rest.length > 0) upstreamSocket.write(rest);
      socket.pipe(upstreamSocket);
      // A replication session to this database may write a cached table (drained-pipe.ts): each of its
      // acknowledgements waits for a pass of the drainer. Another database's sessions write none.
      const toClient = database === postgresName(ctx.upstream.database) && ctx.fence === 'on' ? drainedPipe(ctx, socket, upstreamSocket) : socket;
      // A client on a plain connection is not offered SCRAM's channel binding here either (sasl.ts).
      if (socket instanceof TLSSocket) upstreamSocket.pipe(toClient);
      else pipeWithoutChannelBinding(upstreamSocket, toClient);
      await new Promise<void>((resolve) => {
        socket.once('close', resolve);
        upstreamSocket!.once('close', resolve);
      });
      return;
    }
    // Every session starts armed for the write marker (write-marker.ts); a startup parameter is also
    // what RESET ALL and DISCARD ALL go back to. Without it (an upstream that refuses it, a startup
    // message at its size limit) the session reads the setting unset, and none of its fences is skipped.
    const marked = ctx.markerStartup.refused ? undefined : withStartupParameter(frame, WRITE_MARKER_SETTING, 'armed');
    upstreamSocket.write(marked ?? frame);
    let upstream = new MessageQueue(upstreamSocket, 'upstream');
    if (marked !== undefined) {
      const first = await upstream.next();
      if (refusesParameter(first, WRITE_MARKER_SETTING)) {
        // A pooler between the proxy and PostgreSQL that refuses unknown startup parameters (PgBouncer's
        // default): this session starts again without it, and so do the proxy's next ones.
        ctx.markerStartup.refused = true;
        upstreamSocket.destroy();
        upstreamSocket = await connectOrTell(ctx, socket);
        if (upstreamSocket === undefined) return;
        upstreamSocket.write(frame);
        upstream = new MessageQueue(upstreamSocket, 'upstream');
      } else upstream.unshift(first);
    }
    // Until PostgreSQL has authenticated the client, its messages are authentication messages, which
    // PostgreSQL caps at 64 KiB: a longer one from a client nobody knows yet ends the connection,
    // instead of being read into memory up to the limit of an authenticated session's messages.
    const client = new MessageQueue(socket, 'client', rest, MAX_UNAUTHENTICATED_MESSAGE_BYTES);
    const state: SessionState = {
      ctx,
      client,
      upstream,
      status: 'I',
      parameters: new Map(),
      statements: new Map(),
      verifiedStatements: new Map(),
      unnamedStale: undefined,
      fingerprint: undefined,
      resolves: undefined,
      variants: undefined,
      preparedInternal: new Map(),
      journalCursor: 0,
      fenceParsedAt: 0,
      fenceThroughFunction: false,
      writeMarks: 0,
      markerRegistered: false,
      markerArmed: false,
      rearmRetryAt: 0,
      announcing: false,
      announced: [],
      announceOverflow: false,
      pendingFlush: new Set(),
      planMemo: {},
      draining: false,
      idle: false,
    };
    // Counted in stream order, as read: a batch's markers are all counted before its ReadyForQuery is taken.
    // Announcements too (and those of another proxy's schema, which are not the client's either).
    upstream.swallow = (m) => {
      const notice = proxyNotice(m);
      if (notice === undefined) return false;
      if (notice.kind === 'announcement') {
        if (notice.schema === ctx.schema) noteAnnouncement(state, notice.row);
        return true;
      }
      state.writeMarks++;
      state.markerArmed = false; // the session's row is quiet now: the next write raises none
      return true;
    };
    const unregister = hooks.register(state);
    ctx.metrics.sessions++;
    ctx.metrics.sessionsTotal++;
    try {
      const onBackend = (pid: number) => {
        backendPid = pid;
        ctx.ownBackends.add(pid);
      };
      if (!(await authenticate(state, onBackend))) return;
      // Set up: from here a client that leaves ends the session at its next batch (a batch in flight,
      // a commit included, is still answered and fenced).
      socket.off('close', leave);
      client.maxMessageBytes = MAX_MESSAGE_BYTES;
      await runBatches(state);
    } finally {
      unregister();
      ctx.metrics.sessions--;
    }
  } catch (error) {
    // A closed or broken connection ends the session; PostgreSQL rolls back what was open.
    if (process.env.LOCKSTEP_PGPROXY_DEBUG === '1') process.stderr.write(`pg-proxy session ended: ${(error as Error).stack}\n`);
  } finally {
    socket.destroy();
    upstreamSocket?.destroy();
    // After the upstream connection is closed: its pid is not reused before its backend exits.
    if (backendPid !== undefined) ctx.ownBackends.delete(backendPid);
  }
}

/**
 * The upstream-to-client direction of a piped session to the proxy's database: each ReadyForQuery is
 * relayed once a pass of the drainer that began after it was applied; when none completes in time
 * (drainAfter rejects), the connection is closed without it.
 */
function drainedPipe(ctx: ProxyContext, client: Socket, upstream: Socket): HoldReadyForQuery {
  // The first ReadyForQuery ends the startup: nothing of the session can have written before it, and
  // holding it refused every such session at connect while the drainer could not pass (a cache
  // outage: found by review).
  let started = false;
  const hold = new HoldReadyForQuery(async () => {
    if (!started) {
      started = true;
      return;
    }
    await ctx.drainAfter(performance.now());
    ctx.metrics.fencesDrained++;
  });
  hold.on('error', () => {
    client.destroy();
    upstream.destroy();
  });
  hold.pipe(client);
  return hold;
}

/**
 * The session's upstream connection; when it cannot be had (PostgreSQL down, a TLS refusal or failed
 * handshake), the client is told why with a FATAL, as a driver expects, instead of a bare close.
 */
async function connectOrTell(ctx: ProxyContext, client: Socket): Promise<Socket | undefined> {
  try {
    return await connectSessionUpstream(ctx.upstream);
  } catch (error) {
    // The proxy's own reasons (a TLS refusal) in full; for the rest only the error's code: the client
    // is not yet authenticated, and the upstream's address is none of its business.
    const reason = error instanceof UpstreamTlsError ? error.message : ((error as { code?: unknown }).code ?? 'the connection failed');
    client.end(build.error('FATAL', '08006', `lockstep proxy: could not connect to PostgreSQL: ${String(reason)}`));
    return undefined;
  }
}

/** An ErrorResponse that names the startup parameter `name` (an availability fallback only: the session reads its setting itself). */
function refusesParameter(m: Message, name: string): boolean {
  return m.type === 'E' && errorCode(m.body) === '08P01' && m.body.includes(name);
}

/**
 * The untyped first message: an SSLRequest is answered 'S' and the handshake run when the proxy has a
 * certificate (else 'N'), a GSSENCRequest 'N', a CancelRequest relayed. Returns the startup message and
 * the socket the session goes on with (the TLS one after a handshake).
 */
async function readStartup(ctx: ProxyContext, raw: Socket): Promise<{ frame: Buffer; rest: Buffer; socket: Socket }> {
  let socket = raw;
  let encrypted = false;
  let buffer = Buffer.alloc(0);
  const deadline = setTimeout(() => socket.destroy(), 10_000); // a silent client does not hold a slot
  try {
    for (;;) {
      buffer = Buffer.concat([buffer, await nextChunk(socket)]);
      let found = readStartupFrame(buffer);
      while (found !== undefined) {
        const code = found.frame.readInt32BE(4);
        if (code === SSL_REQUEST_CODE && ctx.clientTls !== undefined && !encrypted) {
          // Bytes after the SSLRequest came before the handshake, unencrypted: whoever sent them may
          // not be the client (CVE-2021-23214). PostgreSQL closes such a connection; so does the proxy.
          if (found.rest.length > 0) throw new Error('unencrypted data after SSLRequest');
          socket.write('S');
          socket = await acceptTls(socket, ctx.clientTls);
          encrypted = true;
          buffer = Buffer.alloc(0);
          found = undefined;
          continue;
        }
        if (code === SSL_REQUEST_CODE && encrypted) throw new Error('SSLRequest inside TLS'); // a protocol violation: PostgreSQL closes too
        if (code === SSL_REQUEST_CODE || code === GSSENC_REQUEST_CODE) {
          socket.write('N');
          buffer = Buffer.from(found.rest);
          found = readStartupFrame(buffer);
          continue;
        }
        if (code === CANCEL_REQUEST_CODE) throw new CancelRequest(found.frame);
        return { ...found, socket };
      }
    }
  } catch (error) {
    if (socket !== raw) socket.destroy(); // the caller destroys the socket it gave
    throw error;
  } finally {
    clearTimeout(deadline);
  }
}

/** The socket's next chunk; it is paused again after it, so nothing is read that no one takes. */
function nextChunk(socket: Socket): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    const onData = (data: Buffer) => {
      cleanup();
      resolve(data);
    };
    const onEnd = () => {
      cleanup();
      reject(new Error('closed before startup'));
    };
    const cleanup = () => {
      socket.off('data', onData);
      socket.off('close', onEnd);
      socket.pause();
    };
    socket.on('data', onData);
    socket.once('close', onEnd);
    socket.resume();
  });
}

class CancelRequest extends Error {
  constructor(readonly frame: Buffer) {
    super('cancel request');
  }
}

/**
 * Relays the authentication exchange unchanged (PostgreSQL decides: trust, cleartext, md5, SCRAM)
 * until the first ReadyForQuery, then opens the session's journal cursor. False when it failed.
 */
async function authenticate(state: SessionState, onBackend: (pid: number) => void): Promise<boolean> {
  const { client, upstream } = state;
  // The client's answers (PasswordMessage, SASL and GSS responses: all type 'p') go up as they come.
  // Anything else was sent ahead of the authentication's end (a query right behind the password): it
  // is the session's first batch, planned and fenced like any other, so it waits in the queue, and so
  // does all that follows it. (Relayed here, a write it made was acknowledged unfenced.)
  client.onMessage = (m: Message) => {
    if (m.type !== 'p' || client.pending > 0) return false;
    toUpstream(state, m.raw);
    return true;
  };
  try {
    for (;;) {
      const m = await upstream.next();
      if (m.type === 'S') recordParameter(state, m);
      if (m.type === 'E') {
        client.socket.end(m.raw);
        return false;
      }
      if (m.type === 'K') {
        onBackend(m.body.readInt32BE(0));
      }
      if (m.type === 'Z') {
        state.status = String.fromCharCode(m.body[0]!) as 'I';
        await openCursor(state);
        toClient(state, m.raw);
        return true;
      }
      // A client on a plain connection is not offered SCRAM's channel binding (sasl.ts).
      toClient(state, m.type === 'R' && !(client.socket instanceof TLSSocket) ? withoutChannelBinding(m.raw) : m.raw);
    }
  } finally {
    client.onMessage = undefined;
  }
}

/**
 * The database a startup message connects to, as PostgreSQL reads it (ProcessStartupPacket): the
 * user's name when none or an empty one is given, both cut to NAMEDATALEN - 1 bytes. A session that
 * named the proxy's database another way (`database=""`) was piped with no fence (found by review).
 */
function startupDatabase(params: ReadonlyMap<string, string>): string {
  const database = params.get('database');
  return postgresName(database === undefined || database === '' ? (params.get('user') ?? '') : database);
}

/** A name as PostgreSQL keeps it: its first 63 bytes (compared byte for byte, as latin1). */
function postgresName(name: string): string {
  return Buffer.from(name).subarray(0, 63).toString('latin1');
}

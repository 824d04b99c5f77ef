// A CancelRequest is relayed to PostgreSQL on a connection of its own: the 16 bytes, then the end of
// the connection, which PostgreSQL closes once it has read them. A PostgreSQL that has stopped
// answering (SIGSTOP, overloaded) still completes the TCP handshake from its listen backlog and then
// never closes: without a deadline each cancel sent meanwhile held a socket until it ran again.
import type { Socket } from 'node:net';
import { connectSessionUpstream, UPSTREAM_CONNECT_MS, type UpstreamTarget } from './upstream-tls.js';

/** How long a relayed cancel's connection may wait for PostgreSQL to close it. */
export const CANCEL_LINGER_MS = UPSTREAM_CONNECT_MS;

/** Sends `frame` (a CancelRequest) to the upstream, unencrypted as libpq sends it; never throws. */
export async function relayCancel(upstream: UpstreamTarget, frame: Buffer): Promise<void> {
  let socket: Socket;
  try {
    socket = await connectSessionUpstream(upstream, { plain: true });
  } catch {
    return; // PostgreSQL cannot be reached: nothing to cancel there either
  }
  const timer = setTimeout(() => socket.destroy(), CANCEL_LINGER_MS);
  timer.unref();
  socket.once('close', () => clearTimeout(timer));
  socket.on('error', () => undefined); // its close follows
  socket.end(frame);
}

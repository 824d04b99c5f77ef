// The two directions of a session's traffic, each with back-pressure: what goes to a side that has
// not taken what was sent to it before stops the proxy from reading the other side (MessageQueue.
// holdFor), as PostgreSQL's own backend blocks on a client that does not read. Without it, a client
// that asks for a large result and reads slowly (or never) made the proxy read the whole result into
// memory, and COPY data sent to a PostgreSQL that reads slowly piled up in the proxy the same way.
import type { SessionState } from './state.js';

/** Sends bytes to the client; while it has not taken them, PostgreSQL is not read. */
export function toClient(state: SessionState, bytes: Buffer): void {
  if (!state.client.socket.write(bytes) && state.upstream.holdFor(state.client.socket)) state.ctx.metrics.backpressureWaits.client++;
}

/** Sends the client's bytes to PostgreSQL; while it has not taken them, the client is not read. */
export function toUpstream(state: SessionState, bytes: Buffer): void {
  if (!state.upstream.socket.write(bytes) && state.client.holdFor(state.upstream.socket)) state.ctx.metrics.backpressureWaits.upstream++;
}

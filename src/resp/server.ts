// Puts the RESP front on a TCP socket. A non-loopback address needs tokens (then every connection
// must AUTH), as on HTTP; one connection past the cap is told so and closed, as Redis does.
import { createServer, type Server, type Socket } from 'node:net';
import type { FrontInfo } from './commands/context.js';
import { serveConnection, type Connection } from './connection.js';
import { resolveRespOptions, type RespOptions } from './options.js';
import { assertListenAllowed, type LockstepService } from './service-port.js';
import { createThrottle } from './throttle.js';
import { ReplyBudget } from '../service/reply-budget.js';
import { QueryBudget } from './query-budget.js';
import { PurgeTracker } from './purges.js';

/** How long a connection refused over the cap may stay half open before it is cut. */
const OVER_CAP_LINGER_MS = 1000;

export interface RespServer {
  /** `redis://host:port`, for clients. */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  /** Open connections now. */
  readonly connections: number;
  /** Request bytes received and not yet worked off, every connection together (maxTotalQueryBufferBytes bounds it). */
  readonly heldRequestBytes: number;
  /** Stops accepting, lets commands in flight answer (up to closeGraceMs), then closes every connection. */
  close(): Promise<void>;
}

export async function listenResp(service: LockstepService, options: RespOptions = {}): Promise<RespServer> {
  const resolved = resolveRespOptions(options, service.maxValueBytes);
  // The plain token too: on a non-loopback address it must be strong, as for the HTTP app's listen().
  assertListenAllowed(resolved.host, resolved.principals.length > 0, options.token);
  const open = new Set<Connection>();
  const front: FrontInfo = {
    startedAt: Date.now(),
    port: resolved.port,
    connectedClients: () => open.size,
    throttle: createThrottle(resolved),
    replies: new ReplyBudget(resolved.maxTotalReplyBytes),
    queries: new QueryBudget(resolved.maxTotalQueryBufferBytes),
    purges: new PurgeTracker(),
  };
  const server: Server = createServer((socket: Socket) => {
    if (open.size >= resolved.maxConnections) {
      socket.on('error', () => undefined);
      socket.end('-ERR max number of clients reached\r\n');
      // A client that keeps its side open must not hold the socket (and close()) forever; the
      // short linger lets the error reach it before the socket goes.
      const linger = setTimeout(() => socket.destroy(), OVER_CAP_LINGER_MS);
      linger.unref();
      socket.once('close', () => clearTimeout(linger));
      return;
    }
    const connection = serveConnection(socket, service, resolved, front);
    open.add(connection);
    socket.once('close', () => open.delete(connection));
  });
  const bindHost = resolved.host.startsWith('[') ? resolved.host.slice(1, -1) : resolved.host;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(resolved.port, bindHost, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('the RESP server has no TCP address');
  (front as { port: number }).port = address.port;
  const urlHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  let closing: Promise<void> | undefined;

  return {
    url: `redis://${urlHost}:${address.port}`,
    host: address.address,
    port: address.port,
    get connections() {
      return open.size;
    },
    get heldRequestBytes() {
      return front.queries.held;
    },
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const connection of open) connection.drain();
        const cut = setTimeout(() => {
          for (const connection of open) connection.destroy();
        }, resolved.closeGraceMs);
        server.once('close', () => clearTimeout(cut));
      });
      return closing;
    },
  };
}

// Puts an app on a socket with @hono/node-server. A non-loopback address needs tokens: without
// them, anyone who can reach the port could read and write every key; and a plain token there must
// be strong (service/token-strength.ts), since anyone on the network may guess it.
import { createAdaptorServer } from '@hono/node-server';
import { createServer, type IncomingMessage, type RequestListener, type Server, type ServerOptions, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { InvalidOptionError } from '../errors.js';
import { isProtectedBy, requiresToken, weakTokenOf } from './app.js';
import { assertListenAllowed, isLoopbackHost, weakTokenError } from '../service/listen-rule.js';

export interface ListenOptions {
  /** @default '127.0.0.1' */
  host?: string;
  /** 0 picks a free port (read it back from `port` or `url`). @default 8080 */
  port?: number;
  /**
   * A token the app was created with, checked against it (a guard against passing the wrong app).
   * Optional: a non-loopback host needs an app created with `token` or `tokens`, whichever is passed here.
   */
  token?: string;
  /** How long close() lets in-flight requests finish before cutting their connections, in ms. @default 5000 */
  closeGraceMs?: number;
  /**
   * Open connections at most; one more is closed at once, without an answer. @default 1000
   */
  maxConnections?: number;
  /**
   * Once an answer is complete, a connection on which no byte then moves for this long is closed, in
   * ms: a client that stops reading an answer does not hold it (and its memory) for ever. The time a
   * request takes to be answered does not count (an audit may run for minutes). 0: never.
   * @default 120000
   */
  idleTimeoutMs?: number;
  /**
   * The whole request, head and body, must arrive within this, in ms, else 408 and the connection is
   * closed (Node's requestTimeout, checked every quarter of it, at most every 30 s): a body trickled
   * in does not hold its connection and its share of maxTotalBodyBytes for ever. The head alone has
   * min(60 s, this) (Node's headersTimeout). @default 300000
   */
  requestTimeoutMs?: number;
}

export interface RunningServer {
  readonly url: string;
  readonly host: string;
  readonly port: number;
  /** Open connections now. */
  readonly connections: number;
  /** Stops accepting connections, lets in-flight requests finish (up to the grace period), then resolves. */
  close(): Promise<void>;
}

interface FetchApp {
  fetch(request: Request, ...rest: never[]): Response | Promise<Response>;
}

export { assertListenAllowed, isLoopbackHost } from '../service/listen-rule.js';

export async function listen(app: FetchApp, options: ListenOptions = {}): Promise<RunningServer> {
  const host = options.host ?? '127.0.0.1';
  const port = options.port ?? 8080;
  const closeGraceMs = options.closeGraceMs ?? 5000;
  const maxConnections = options.maxConnections ?? 1000;
  const idleTimeoutMs = options.idleTimeoutMs ?? 120_000;
  if (!Number.isInteger(maxConnections) || maxConnections < 1) {
    throw new InvalidOptionError(`maxConnections must be a positive integer (got ${JSON.stringify(maxConnections)})`);
  }
  if (!Number.isInteger(idleTimeoutMs) || idleTimeoutMs < 0) {
    throw new InvalidOptionError(`idleTimeoutMs must be a whole number of ms, 0 or more (got ${JSON.stringify(idleTimeoutMs)})`);
  }
  const requestTimeoutMs = options.requestTimeoutMs ?? 300_000;
  if (!Number.isInteger(requestTimeoutMs) || requestTimeoutMs < 1) {
    throw new InvalidOptionError(`requestTimeoutMs must be a positive whole number of ms (got ${JSON.stringify(requestTimeoutMs)})`);
  }
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new InvalidOptionError(`port must be an integer from 0 to 65535 (got ${JSON.stringify(port)})`);
  }
  if (options.token !== undefined && !isProtectedBy(app, options.token)) {
    throw new InvalidOptionError('the app was not created with this token: pass the same token to createApp() and listen()');
  }
  assertListenAllowed(host, requiresToken(app));
  const weakness = weakTokenOf(app);
  if (weakness !== undefined && !isLoopbackHost(host)) throw weakTokenError(host, weakness);

  const server = createAdaptorServer({
    fetch: app.fetch.bind(app) as never,
    hostname: host,
    createServer: ((serverOptions: ServerOptions, listener: RequestListener) => createServer({ ...serverOptions, ...requestDeadlines(requestTimeoutMs) }, oneAtATime(listener, idleTimeoutMs))) as never,
  }) as Server;
  server.maxConnections = maxConnections;
  let connections = 0;
  server.on('connection', (socket: Socket) => {
    connections++;
    socket.once('close', () => connections--);
  });
  await new Promise<void>((resolve, reject) => {
    const onError = (error: Error): void => reject(error);
    server.once('error', onError);
    server.listen(port, host.startsWith('[') ? host.slice(1, -1) : host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const urlHost = address.family === 'IPv6' || address.address.includes(':') ? `[${address.address}]` : address.address;
  let closing: Promise<void> | undefined;

  return {
    url: `http://${urlHost}:${address.port}`,
    host: address.address,
    port: address.port,
    get connections() {
      return connections;
    },
    close() {
      closing ??= new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        // Keep-alive connections with no request in flight would hold close() open: end them now,
        // and cut whatever is still running once the grace period is over. The timer is not
        // unref'd: a half-read upload may hold no ref'd handle, and close() must still resolve.
        server.closeIdleConnections();
        const cut = setTimeout(() => server.closeAllConnections(), closeGraceMs);
        server.once('close', () => clearTimeout(cut));
      });
      return closing;
    },
  };
}

/** Node's deadlines for a request's arrival; Node refuses a headersTimeout over the requestTimeout. */
function requestDeadlines(requestTimeoutMs: number): ServerOptions {
  return {
    requestTimeout: requestTimeoutMs,
    headersTimeout: Math.min(60_000, requestTimeoutMs),
    connectionsCheckingInterval: Math.min(30_000, Math.max(50, Math.floor(requestTimeoutMs / 4))),
  };
}

/**
 * Handles a connection's requests one at a time: a pipelined request starts once the answer before
 * it has been handed to the operating system. Node parses every request of a chunk at once, so a
 * client that pipelines GETs of a large value and does not read got all of their answers built in
 * memory (2,000 requests of 50 bytes: 2 GB); now it holds one answer, and TCP pushes back.
 * While a complete answer waits for the client to take it, the connection is cut after
 * `idleTimeoutMs` without progress (Node's own handler of a socket's 'timeout' destroys it).
 */
function oneAtATime(listener: RequestListener, idleTimeoutMs: number): RequestListener<typeof IncomingMessage, typeof ServerResponse> {
  const waiting = new WeakMap<Socket, Array<() => void>>();
  return (req, res) => {
    const socket = req.socket;
    const start = (): void => {
      let done = false;
      const next = (): void => {
        if (done) return;
        done = true;
        const following = socket.destroyed ? undefined : waiting.get(socket)?.shift();
        if (following !== undefined) following();
        else waiting.delete(socket); // none waits, or the connection is gone: what waited is dropped unanswered
      };
      res.once('finish', next);
      res.once('close', next);
      if (idleTimeoutMs > 0) {
        socket.setTimeout(0); // the request's own time is bounded by its deadlines, not by this
        res.once('prefinish', () => socket.setTimeout(idleTimeoutMs)); // the answer is complete: now the client must take it
      }
      void listener(req, res);
    };
    const queue = waiting.get(socket);
    if (queue === undefined) {
      waiting.set(socket, []);
      start();
    } else queue.push(start);
  };
}

// A TCP relay in front of a real server (PostgreSQL, MariaDB, Redis) that can stop forwarding:
// while stalled it still accepts connections and reads what both sides send, but delivers nothing,
// as a database behind a partition, a failover or a full disk does. `down()` cuts every connection
// and closes the port (connection refused). Everything it opened is destroyed by close().
import { createServer, Socket, type AddressInfo, type Server } from 'node:net';

export interface StallRelay {
  /** host:port of the relay. */
  readonly port: number;
  /** `url` with its host and port replaced by the relay's. */
  urlFor(url: string): string;
  /** Stop forwarding in both directions (new connections are accepted, then hang too). */
  stall(): void;
  /** Forward again, delivering what was held back. */
  resume(): void;
  /** The backend is down: every connection is cut and the port refuses new ones. */
  down(): Promise<void>;
  /** Listen again on the same port (after down()). */
  up(): Promise<void>;
  /** Cut every connection; new ones go to `target` (an address moved to another server, as on a failover). */
  retarget(target: string): void;
  /**
   * The connections open now are lost without a trace (a host that died, an address moved by DNS:
   * no FIN, no RST ever comes): they stay open and deliver nothing, ever. New connections forward.
   */
  abandon(): void;
  /**
   * The connection accepted last holds back what the server sends from now on (the server has
   * answered, its reply is in flight), until resume(): the reply arrives late, other connections
   * are untouched. Returns a count of the chunks held on it so far.
   */
  holdRepliesOfNewest(): () => number;
  /** Connections the relay holds open now. */
  readonly connections: number;
  /** Chunks held back since the stall began (something was sent to a stalled peer). */
  readonly held: number;
  close(): Promise<void>;
}

export async function startStallRelay(target: string): Promise<StallRelay> {
  let { hostname, port: targetPort } = new URL(target);
  let stalled = false;
  const pairs = new Set<{ client: Socket; upstream: Socket; held: Array<[Socket, Buffer]>; lost: boolean; holdReplies: boolean }>();
  let newest: { client: Socket; held: Array<[Socket, Buffer]>; holdReplies: boolean } | undefined;

  const server: Server = createServer((client) => {
    const upstream = new Socket();
    const pair = { client, upstream, held: [] as Array<[Socket, Buffer]>, lost: false, holdReplies: false };
    pairs.add(pair);
    newest = pair;
    const forward = (to: Socket) => (chunk: Buffer) => {
      if (pair.lost) return;
      if (stalled || (pair.holdReplies && to === client)) pair.held.push([to, chunk]);
      else if (!to.destroyed) to.write(chunk);
    };
    const end = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('data', forward(upstream));
    upstream.on('data', forward(client));
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    upstream.connect(Number(targetPort), hostname);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const cut = (): void => {
    for (const { client, upstream } of pairs) {
      client.destroy();
      upstream.destroy();
    }
    pairs.clear();
  };

  return {
    port,
    urlFor(url) {
      const u = new URL(url);
      u.hostname = '127.0.0.1';
      u.port = String(port);
      return u.toString();
    },
    stall() {
      stalled = true;
    },
    resume() {
      stalled = false;
      for (const pair of pairs) {
        pair.holdReplies = false;
        for (const [to, chunk] of pair.held.splice(0)) if (!to.destroyed) to.write(chunk);
      }
    },
    async down() {
      cut();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
    async up() {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, '127.0.0.1', () => {
          server.off('error', reject);
          resolve();
        });
      });
    },
    holdRepliesOfNewest() {
      const pair = newest;
      if (pair === undefined) throw new Error('no connection yet');
      pair.holdReplies = true;
      return () => pair.held.filter(([to]) => to === pair.client).length;
    },
    abandon() {
      for (const pair of pairs) {
        pair.lost = true;
        pair.held.length = 0;
      }
      stalled = false;
    },
    retarget(next) {
      ({ hostname, port: targetPort } = new URL(next));
      cut();
    },
    get connections() {
      return pairs.size;
    },
    get held() {
      let chunks = 0;
      for (const pair of pairs) chunks += pair.held.length;
      return chunks;
    },
    async close() {
      cut();
      if (server.listening) await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

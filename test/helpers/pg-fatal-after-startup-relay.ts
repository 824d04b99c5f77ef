// A TCP relay in front of a real PostgreSQL that terminates each backend right after its start-up,
// the worst way round for a client: the backend's first ReadyForQuery and a FATAL 57P01 ("terminating
// connection due to administrator command", what pg_terminate_backend sends) reach the client in one
// socket write, so the driver parses both in one read. Then the relay closes the connection.
import { createServer, Socket, type AddressInfo } from 'node:net';

/** An ErrorResponse message: severity FATAL, SQLSTATE 57P01. */
function fatalTermination(): Buffer {
  const fields = Buffer.from('SFATAL\0VFATAL\0C57P01\0Mterminating connection due to administrator command\0\0', 'utf8');
  const header = Buffer.alloc(5);
  header.write('E', 0, 'latin1');
  header.writeInt32BE(4 + fields.length, 1);
  return Buffer.concat([header, fields]);
}

export interface FatalAfterStartupRelay {
  /** `url` with its host and port replaced by the relay's. */
  urlFor(url: string): string;
  /** Connections terminated so far. */
  readonly terminated: number;
  close(): Promise<void>;
}

export async function startFatalAfterStartupRelay(target: string): Promise<FatalAfterStartupRelay> {
  const { hostname, port: targetPort } = new URL(target);
  const sockets = new Set<Socket>();
  let terminated = 0;
  const server = createServer((client) => {
    const upstream = new Socket();
    sockets.add(client).add(upstream);
    const end = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('data', (chunk: Buffer) => upstream.write(chunk));
    // The backend's messages, framed (type byte, int32 length), up to its first ReadyForQuery ('Z').
    let pending = Buffer.alloc(0);
    upstream.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      let offset = 0;
      while (pending.length - offset >= 5) {
        const length = 1 + pending.readInt32BE(offset + 1);
        if (pending.length - offset < length) break;
        const type = String.fromCharCode(pending[offset]!);
        offset += length;
        if (type === 'Z') {
          terminated++;
          client.end(Buffer.concat([pending.subarray(0, offset), fatalTermination()]));
          upstream.destroy();
          return;
        }
      }
    });
    client.on('error', end).on('close', end);
    upstream.on('error', end);
    upstream.connect(Number(targetPort), hostname);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    urlFor(url) {
      const u = new URL(url);
      u.hostname = '127.0.0.1';
      u.port = String(port);
      return u.toString();
    },
    get terminated() {
      return terminated;
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

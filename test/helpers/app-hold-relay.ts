// A TCP relay in front of a real PostgreSQL that can hold back what the connections of one
// application send (told apart by the application_name of their start-up message), as a slow or
// partitioned network between that client and the server would; the others pass untouched.
import { createServer, Socket, type AddressInfo, type Server } from 'node:net';

export interface AppHoldRelay {
  /** `url` with its host and port replaced by the relay's. */
  urlFor(url: string): string;
  /** Hold what the application's connections send from now on (new connections' start-up too). */
  hold(): void;
  /** Deliver what was held, and forward again. */
  release(): void;
  /** The application's connections opened through the relay so far. */
  readonly opened: number;
  /** The application's connections open now. */
  readonly open: number;
  close(): Promise<void>;
}

export async function startAppHoldRelay(target: string, applicationName: string): Promise<AppHoldRelay> {
  const { hostname, port: targetPort } = new URL(target);
  let holding = false;
  const held: Array<() => void> = [];
  const sockets = new Set<Socket>();
  let opened = 0;
  let open = 0;
  const server: Server = createServer((client) => {
    const upstream = new Socket();
    sockets.add(client).add(upstream);
    let ours: boolean | undefined;
    client.on('data', (chunk: Buffer) => {
      if (ours === undefined) {
        ours = chunk.includes(applicationName);
        if (ours) {
          opened++;
          open++;
          client.once('close', () => open--);
        }
      }
      if (ours && holding) held.push(() => !upstream.destroyed && upstream.write(chunk));
      else upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => client.write(chunk));
    const end = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    upstream.connect(Number(targetPort), hostname);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as AddressInfo).port;
  return {
    urlFor(url) {
      const u = new URL(url);
      u.hostname = '127.0.0.1';
      u.port = String(port);
      return u.toString();
    },
    hold() {
      holding = true;
    },
    release() {
      holding = false;
      for (const send of held.splice(0)) send();
    },
    get opened() {
      return opened;
    },
    get open() {
      return open;
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

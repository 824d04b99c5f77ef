// A TCP relay in front of a server (PostgreSQL, MariaDB: plain TCP) that, once armed, holds back one
// connection's bytes to the server (a partition that heals later: TCP delivers them late), from the
// point `arm` finds in a chunk on, with its end (the kernel keeps a FIN behind unsent data), until
// resume(). fromCommit matches PostgreSQL's protocol; fromNextChunk any.
import net from 'node:net';

/** A simple-protocol Query message of exactly `COMMIT` (what the stores send to commit). */
export const COMMIT_MESSAGE = Buffer.concat([Buffer.from('Q'), Buffer.from([0, 0, 0, 11]), Buffer.from('COMMIT\0')]);

/** Where in a chunk to start holding: its index, or -1 to pass the chunk on. */
export type HoldFrom = (chunk: Buffer) => number;
export const fromCommit: HoldFrom = (chunk) => chunk.indexOf(COMMIT_MESSAGE);
export const fromNextChunk: HoldFrom = () => 0;

export async function holdRelay(target: string) {
  const { hostname, port } = new URL(target);
  let armed: HoldFrom | undefined;
  let heldAt: number | undefined;
  let heldUpstreamClosed = false;
  const holds: Array<() => void> = [];
  const server = net.createServer({ allowHalfOpen: true }, (client) => {
    const upstream = net.connect(Number(port || 5432), hostname);
    let held: Buffer[] | undefined;
    let endHeld = false;
    client.on('data', (chunk: Buffer) => {
      if (held !== undefined) return void held.push(chunk);
      const at = armed === undefined ? -1 : armed(chunk);
      if (at < 0) return void upstream.write(chunk);
      armed = undefined;
      heldAt = performance.now();
      upstream.write(chunk.subarray(0, at));
      held = [chunk.subarray(at)];
      upstream.on('close', () => (heldUpstreamClosed = true));
      holds.push(() => {
        for (const part of held!.splice(0)) upstream.write(part);
        held = undefined;
        if (endHeld) upstream.end();
      });
    });
    client.on('end', () => (held !== undefined ? (endHeld = true) : upstream.end()));
    upstream.on('data', (chunk: Buffer) => client.destroyed || client.write(chunk));
    upstream.on('end', () => client.end());
    upstream.on('close', () => client.destroy());
    client.on('error', () => undefined);
    upstream.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = new URL(target);
  url.hostname = '127.0.0.1';
  url.port = String((server.address() as net.AddressInfo).port);
  return {
    url: url.toString(),
    /** Holds the next connection whose chunk `from` matches (default: the next chunk sent). */
    arm: (from: HoldFrom = fromNextChunk) => (armed = from),
    /** ms since the bytes were held (undefined before). */
    heldFor: () => (heldAt === undefined ? undefined : performance.now() - heldAt),
    /** Whether the held connection's server side has closed (the server ended or dropped the session). */
    heldUpstreamClosed: () => heldUpstreamClosed,
    resume: () => holds.splice(0).forEach((deliver) => deliver()),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

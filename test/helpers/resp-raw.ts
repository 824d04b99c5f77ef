// A raw TCP client for the RESP front: sends bytes exactly as given and collects what comes back,
// so tests can assert the exact reply bytes, and whether the server closed the connection.
import { Socket } from 'node:net';

export interface RawResult {
  readonly data: string;
  /** The server closed (or reset) the connection. */
  readonly closed: boolean;
}

/**
 * Sends `request`, then waits until `expected` bytes (or a predicate over the text) have arrived (or the server closes, or
 * `timeoutMs` passes: a deadline, never a pause that decides the result).
 */
export function exchange(port: number, request: string | Buffer, expected: string | number | ((data: string) => boolean), timeoutMs = 10_000): Promise<RawResult> {
  const done =
    typeof expected === 'function'
      ? (bytes: Buffer[]) => expected(Buffer.concat(bytes).toString('utf8'))
      : (bytes: Buffer[], received: number) => received >= (typeof expected === 'number' ? expected : Buffer.byteLength(expected));
  return new Promise((resolve) => {
    const socket = new Socket();
    const chunks: Buffer[] = [];
    let received = 0;
    let closed = false;
    const timer = setTimeout(() => finish(), timeoutMs);
    const finish = (): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ data: Buffer.concat(chunks).toString('utf8'), closed });
    };
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      received += chunk.length;
      if (done(chunks, received)) finish();
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      closed = true;
      finish();
    });
    socket.connect(port, '127.0.0.1', () => socket.write(request));
  });
}

/** A request in multibulk form, as clients send it. */
export function command(...args: Array<string | Buffer>): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const arg of args) {
    const bytes = typeof arg === 'string' ? Buffer.from(arg) : arg;
    parts.push(Buffer.from(`$${bytes.length}\r\n`), bytes, Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);
}

export const pipeline = (...commands: Buffer[]): Buffer => Buffer.concat(commands);

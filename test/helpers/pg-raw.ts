// A minimal PostgreSQL protocol client for tests that compare answers byte for byte (trust auth only).
import { connect, type Socket } from 'node:net';
import { MessageReader, type Message } from '../../src/pg-proxy/framing.js';

export interface RawConnection {
  /** Sends the frames and returns every message up to and including ReadyForQuery. */
  exchange(frames: readonly Buffer[]): Promise<Message[]>;
  close(): void;
}

/** A typed protocol message of the given body parts. */
export function frame(type: string, ...parts: Buffer[]): Buffer {
  const body = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
  const head = Buffer.alloc(5);
  head.write(type, 0, 'latin1');
  head.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
}
export const cstr = (s: string) => Buffer.concat([Buffer.from(s), Buffer.from([0])]);
export const i16 = (n: number) => {
  const b = Buffer.alloc(2);
  b.writeInt16BE(n);
  return b;
};
export const i32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
};

export const raw = {
  query: (sql: string) => frame('Q', cstr(sql)),
  parse: (name: string, sql: string, types: number[] = []) => frame('P', Buffer.concat([cstr(name), cstr(sql), i16(types.length), ...types.map(i32)])),
  bind: (portal: string, statement: string, param: Buffer, paramFormat: 0 | 1, resultFormat: 0 | 1) =>
    frame('B', Buffer.concat([cstr(portal), cstr(statement), i16(1), i16(paramFormat), i16(1), i32(param.length), param, i16(1), i16(resultFormat)])),
  describePortal: (name: string) => frame('D', Buffer.concat([Buffer.from('P'), cstr(name)])),
  execute: (portal: string) => frame('E', Buffer.concat([cstr(portal), i32(0)])),
  sync: () => frame('S', Buffer.alloc(0)),
};

export async function rawConnect(host: string, port: number, user: string, database: string): Promise<RawConnection> {
  const socket: Socket = connect({ host, port });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  const reader = new MessageReader();
  let buffered: Message[] = [];
  let wake: (() => void) | undefined;
  socket.on('data', (chunk: Buffer) => {
    buffered.push(...reader.push(chunk));
    wake?.();
  });
  async function untilReady(): Promise<Message[]> {
    for (;;) {
      const at = buffered.findIndex((m) => m.type === 'Z');
      if (at >= 0) {
        const out = buffered.slice(0, at + 1);
        buffered = buffered.slice(at + 1);
        return out;
      }
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no ReadyForQuery within 10 s')), 10_000);
        wake = () => {
          clearTimeout(timer);
          wake = undefined;
          resolve();
        };
      });
    }
  }
  const params = Buffer.concat([cstr('user'), cstr(user), cstr('database'), cstr(database), cstr('client_encoding'), cstr('UTF8'), Buffer.from([0])]);
  const startup = Buffer.concat([i32(params.length + 8), i32(196608), params]);
  socket.write(startup);
  await untilReady();
  return {
    async exchange(frames) {
      socket.write(Buffer.concat(frames));
      return untilReady();
    },
    close() {
      socket.destroy();
    },
  };
}

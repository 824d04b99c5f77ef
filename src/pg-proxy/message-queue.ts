// A socket's messages as an async queue: the session awaits the next message of the upstream (or
// of the client) in order. Ends with an error when the socket closes or sends a malformed frame.
import type { Socket } from 'node:net';
import { MessageReader, type Message } from './framing.js';

export class ConnectionClosedError extends Error {}

export class MessageQueue {
  private readonly reader = new MessageReader();
  private readonly framed: Message[] = [];
  private readonly queue: Message[] = [];
  private waiter: { resolve: (m: Message) => void; reject: (e: Error) => void } | undefined;
  private closed: Error | undefined;
  /** When set, messages go to it instead of the queue (COPY data, raw extended mode). */
  onMessage: ((message: Message) => boolean) | undefined;
  /** When set, a message it returns true for is taken out of the stream as it is read (before onMessage and the queue). */
  swallow: ((message: Message) => boolean) | undefined;

  constructor(
    readonly socket: Socket,
    readonly label: string,
    initial?: Buffer,
  ) {
    socket.on('data', (chunk: Buffer) => this.push(chunk));
    socket.on('close', () => this.fail(new ConnectionClosedError(`${label} closed the connection`)));
    socket.on('error', (error) => this.fail(new ConnectionClosedError(`${label}: ${error.message}`)));
    if (initial !== undefined && initial.length > 0) this.push(initial);
    socket.resume(); // the startup reader left it paused
  }

  private push(chunk: Buffer): void {
    // One array for every chunk of this socket, emptied after each: nothing below reads the socket
    // again synchronously (writes, resume() and destroy() act on a later turn).
    const messages = this.framed;
    messages.length = 0;
    try {
      this.reader.pushInto(chunk, messages);
    } catch (error) {
      messages.length = 0;
      this.fail(error as Error);
      this.socket.destroy();
      return;
    }
    for (let i = 0; i < messages.length; i++) {
      const message = messages[i]!;
      if (this.swallow?.(message) === true) continue;
      if (this.onMessage?.(message) === true) continue;
      if (this.waiter !== undefined) {
        const { resolve } = this.waiter;
        this.waiter = undefined;
        resolve(message);
      } else this.queue.push(message);
    }
    messages.length = 0;
    // Back-pressure: stop reading a peer that runs far ahead of the session.
    if (this.queue.length > 10_000) this.socket.pause();
  }

  private fail(error: Error): void {
    if (this.closed !== undefined) return;
    this.closed = error;
    if (this.waiter !== undefined) {
      const { reject } = this.waiter;
      this.waiter = undefined;
      reject(error);
    }
  }

  /** Messages already received and not yet taken. */
  get pending(): number {
    return this.queue.length;
  }

  peek(): Message | undefined {
    return this.queue[0];
  }

  next(): Promise<Message> {
    const message = this.queue.shift();
    if (this.queue.length < 1_000 && this.socket.isPaused()) this.socket.resume();
    if (message !== undefined) return Promise.resolve(message);
    if (this.closed !== undefined) return Promise.reject(this.closed);
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
    });
  }

  /** Puts a message taken with next() back at the head of the queue. */
  unshift(message: Message): void {
    this.queue.unshift(message);
  }

  /** The next message if one is already queued (no promise, no turn of the event loop). */
  tryNext(): Message | undefined {
    const message = this.queue.shift();
    if (this.queue.length < 1_000 && this.socket.isPaused()) this.socket.resume();
    return message;
  }

  /** Takes every queued message (used when handing queued client messages over to a raw mode). */
  drain(): Message[] {
    return this.queue.splice(0);
  }

  get isClosed(): boolean {
    return this.closed !== undefined;
  }
}

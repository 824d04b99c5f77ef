// A socket's messages as an async queue: the session awaits the next message of the upstream (or
// of the client) in order. Ends with an error when the socket closes or sends a malformed frame.
// Back-pressure: the socket stops being read while many messages or bytes wait in the queue, and
// while the peer its messages go to has not taken what was written to it (holdFor), so a client
// that does not read, or a PostgreSQL that does not, is pushed back by TCP instead of buffered.
import { once } from 'node:events';
import type { Socket } from 'node:net';
import { byteLength, MessageReader, type Message } from './framing.js';

export class ConnectionClosedError extends Error {}

/** Messages / bytes queued and not yet taken past which the socket stops being read. */
const MAX_QUEUED_MESSAGES = 10_000;
export const MAX_QUEUED_BYTES = 1024 * 1024;

const NONE: readonly Message[] = Object.freeze([]);

export class MessageQueue {
  private readonly reader = new MessageReader();
  private readonly framed: Message[] = [];
  private readonly queue: Message[] = [];
  private queuedBytes = 0;
  /** Set while the peer this socket's messages go to has not taken what was written to it. */
  private held = false;
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
    /** The longest message taken (a longer one ends the connection); see maxMessageBytes. */
    maxMessageBytes?: number,
  ) {
    if (maxMessageBytes !== undefined) this.reader.maxMessageBytes = maxMessageBytes;
    socket.on('data', (chunk: Buffer) => this.push(chunk));
    socket.on('close', () => this.fail(new ConnectionClosedError(`${label} closed the connection`)));
    socket.on('error', (error) => this.fail(new ConnectionClosedError(`${label}: ${error.message}`)));
    if (initial !== undefined && initial.length > 0) this.push(initial);
    // A socket that closed before this queue listened (a client that left while its session was set up).
    if (socket.destroyed) this.fail(new ConnectionClosedError(`${label} closed the connection`));
    this.resumeIfRoom(); // the startup reader left it paused
  }

  /** The longest message taken from now on. */
  set maxMessageBytes(bytes: number) {
    this.reader.maxMessageBytes = bytes;
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
      } else {
        this.queue.push(message);
        this.queuedBytes += byteLength(message);
      }
    }
    messages.length = 0;
    // Back-pressure: stop reading a peer that runs far ahead of the session.
    if (this.queue.length > MAX_QUEUED_MESSAGES || this.queuedBytes > MAX_QUEUED_BYTES) this.socket.pause();
  }

  /** Reads again once the queue has room and no peer holds it back. */
  private resumeIfRoom(): void {
    if (!this.held && this.queue.length < 1_000 && this.queuedBytes <= MAX_QUEUED_BYTES / 2 && this.socket.isPaused()) this.socket.resume();
  }

  private taken(message: Message | undefined): Message | undefined {
    if (message !== undefined) this.queuedBytes -= byteLength(message);
    this.resumeIfRoom();
    return message;
  }

  /**
   * Stops reading this socket until `peer` has taken what was written to it ('drain') or closes:
   * call it when a write of this socket's messages (or of answers to them) to `peer` returned false.
   * Whether a hold began (false: one is on already, or the peer is gone).
   */
  holdFor(peer: Socket): boolean {
    if (this.held || peer.destroyed || !peer.writableNeedDrain) return false;
    this.held = true;
    this.socket.pause();
    void drained(peer).then(() => {
      this.held = false;
      this.resumeIfRoom();
    });
    return true;
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
    const message = this.taken(this.queue.shift());
    if (message !== undefined) return Promise.resolve(message);
    if (this.closed !== undefined) return Promise.reject(this.closed);
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
    });
  }

  /** Puts a message taken with next() back at the head of the queue. */
  unshift(message: Message): void {
    this.queue.unshift(message);
    this.queuedBytes += byteLength(message);
  }

  /** The next message if one is already queued (no promise, no turn of the event loop). */
  tryNext(): Message | undefined {
    return this.taken(this.queue.shift());
  }

  /** Takes every queued message (used when handing queued client messages over to a raw mode). */
  drain(): readonly Message[] {
    if (this.queue.length === 0) {
      this.resumeIfRoom();
      return NONE; // the idle session's usual case: no array made
    }
    const all = this.queue.splice(0);
    this.queuedBytes = 0;
    this.resumeIfRoom();
    return all;
  }

  get isClosed(): boolean {
    return this.closed !== undefined;
  }
}

/** Resolves when `socket` has sent what was written to it (at once if nothing waits), or is gone. */
export async function drained(socket: Socket): Promise<void> {
  if (!socket.writableNeedDrain || socket.destroyed) return;
  const controller = new AbortController();
  await Promise.race([once(socket, 'drain', { signal: controller.signal }), once(socket, 'close', { signal: controller.signal })]).catch(() => undefined);
  controller.abort();
}

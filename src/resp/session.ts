// One connection's state: the protocol it speaks (HELLO), who it authenticated as (AUTH), and what
// CLIENT SETNAME / SETINFO told us. Commands read and change it; the connection owns it.
import type { Protocol } from './replies.js';
import type { Principal } from './service-port.js';

export interface Session {
  readonly id: number;
  readonly remoteAddress: string;
  readonly localAddress: string;
  readonly createdAt: number;
  protocol: Protocol;
  /** Set by AUTH or HELLO … AUTH; undefined while unauthenticated (or when no tokens are configured). */
  principal: Principal | undefined;
  name: string | undefined;
  libName: string | undefined;
  libVersion: string | undefined;
  lastCommand: string;
  /** QUIT: close once this reply is written. */
  closing: boolean;
  /** After MULTI until EXEC or DISCARD: every command is refused unrun (refused-multi.ts). */
  inRefusedMulti: boolean;
}

let nextId = 0;

export function createSession(remoteAddress: string, localAddress: string): Session {
  return {
    id: ++nextId,
    remoteAddress,
    localAddress,
    createdAt: Date.now(),
    protocol: 2,
    principal: undefined,
    name: undefined,
    libName: undefined,
    libVersion: undefined,
    lastCommand: 'NULL',
    closing: false,
    inRefusedMulti: false,
  };
}

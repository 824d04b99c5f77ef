import { randomBytes } from 'node:crypto';

/**
 * Lease tokens: unique across processes (a random prefix per source) and cheap to make (a counter),
 * since one is minted per write and per cache miss.
 */
export function createTokenSource(kind: string): () => string {
  const prefix = `${kind}:${randomBytes(6).toString('base64url')}:`;
  let counter = 0;
  return () => prefix + (++counter).toString(36);
}

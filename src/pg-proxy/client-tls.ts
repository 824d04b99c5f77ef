// TLS between clients and the proxy: with a certificate and key, an SSLRequest is answered 'S' and the
// session runs over TLS (PostgreSQL's own negotiation, so every driver's sslmode works); `required`
// refuses sessions that did not ask for it. Without them every SSLRequest is answered 'N'.
import type { Socket } from 'node:net';
import { createSecureContext, TLSSocket, type SecureContext } from 'node:tls';

export interface PgProxyTlsOptions {
  /** PEM certificate chain the proxy presents to clients. */
  readonly cert: string | Buffer;
  /** PEM private key of that certificate. */
  readonly key: string | Buffer;
  /** Refuse sessions that did not negotiate TLS (a CancelRequest is still taken unencrypted, as PostgreSQL does). @default false */
  readonly required?: boolean;
}

export interface ClientTls {
  readonly context: SecureContext;
  readonly required: boolean;
}

/** How long a client may take to finish its TLS handshake (within the startup deadline). */
const HANDSHAKE_MS = 10_000;

export function createClientTls(options: PgProxyTlsOptions | undefined): ClientTls | undefined {
  if (options === undefined) return undefined;
  if (options.cert === undefined || options.key === undefined) throw new Error('tls needs both cert and key (PEM)');
  if (options.required !== undefined && typeof options.required !== 'boolean') throw new Error('tls.required must be a boolean');
  // Fails here, at start, on a certificate or key that cannot be read or do not match.
  const context = createSecureContext({ cert: options.cert, key: options.key, minVersion: 'TLSv1.2' });
  return { context, required: options.required ?? false };
}

/** Runs the server side of the handshake on a client that was just answered 'S'. */
export function acceptTls(socket: Socket, tls: ClientTls): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const secure = new TLSSocket(socket, { isServer: true, secureContext: tls.context });
    const timer = setTimeout(() => fail(new Error(`the client did not finish its TLS handshake within ${HANDSHAKE_MS} ms`)), HANDSHAKE_MS);
    const fail = (error: Error) => {
      clearTimeout(timer);
      secure.destroy();
      socket.destroy();
      reject(error);
    };
    const onClose = () => fail(new Error('the client closed the connection during the TLS handshake'));
    secure.once('error', fail);
    secure.once('close', onClose);
    secure.once('secure', () => {
      clearTimeout(timer);
      secure.off('error', fail);
      secure.off('close', onClose);
      secure.on('error', () => undefined); // from here on the session's reader sees errors as a close
      resolve(secure);
    });
  });
}

// SCRAM channel binding (SCRAM-SHA-256-PLUS, tls-server-end-point) binds the exchange to the hash of
// the certificate the client's TLS connection ended at. Through the proxy:
// - a client on a plain connection must not be offered it: PostgreSQL offers it on the proxy's TLS
//   connection, and libpq refuses a -PLUS offer over a connection without TLS. The proxy takes the
//   -PLUS mechanisms out of the offer it relays.
// - a client on TLS is offered what PostgreSQL offers. Its binding holds only if the proxy presents
//   PostgreSQL's own certificate (same hash); otherwise the exchange fails, and a client must not
//   ask for binding (libpq: channel_binding=disable). Hiding the offer would not help: a client that
//   supports binding says so in its first message, and PostgreSQL refuses that as a downgrade.
const AUTHENTICATION_SASL = 10;
const PLUS = '-PLUS';

/** An AuthenticationSASL message without its channel-binding mechanisms; any other message unchanged. */
export function withoutChannelBinding(raw: Buffer): Buffer {
  if (raw[0] !== 0x52 /* R */ || raw.length < 9 || raw.readInt32BE(5) !== AUTHENTICATION_SASL) return raw;
  const mechanisms: string[] = [];
  let at = 9;
  for (;;) {
    const end = raw.indexOf(0, at);
    if (end < 0) return raw; // malformed: left for the client to reject
    if (end === at) break;
    mechanisms.push(raw.toString('utf8', at, end));
    at = end + 1;
  }
  const kept = mechanisms.filter((name) => !name.endsWith(PLUS));
  if (kept.length === mechanisms.length || kept.length === 0) return raw;
  const body = Buffer.concat([...kept.map((name) => Buffer.from(`${name}\0`, 'utf8')), Buffer.from([0])]);
  const out = Buffer.alloc(9 + body.length);
  out[0] = 0x52;
  out.writeInt32BE(8 + body.length, 1);
  out.writeInt32BE(AUTHENTICATION_SASL, 5);
  body.copy(out, 9);
  return out;
}

/** Authentication messages are small: a longer frame during the exchange is left alone, and so is the rest. */
const MAX_AUTHENTICATION_FRAME = 64 * 1024;

/**
 * The pass-through's upstream-to-client direction for a client on a plain connection: the messages of
 * the authentication exchange with the channel-binding mechanisms taken out of the SASL offer (as the
 * session's own relay does), then, from AuthenticationOk or an ErrorResponse on, the bytes as they come.
 */
export function pipeWithoutChannelBinding(upstream: NodeJS.ReadableStream, client: NodeJS.WritableStream): void {
  let pending: Buffer = Buffer.alloc(0);
  const onData = (chunk: Buffer) => {
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    while (pending.length >= 5) {
      const length = pending.readInt32BE(1);
      if (length < 4 || length > MAX_AUTHENTICATION_FRAME) return handOver();
      if (pending.length < 1 + length) return;
      const raw = pending.subarray(0, 1 + length);
      pending = pending.subarray(1 + length);
      client.write(withoutChannelBinding(raw));
      const authenticated = raw[0] === 0x52 /* R */ && length >= 8 && raw.readInt32BE(5) === 0;
      if (authenticated || raw[0] === 0x45 /* E */) return handOver();
    }
  };
  const handOver = () => {
    upstream.off('data', onData);
    if (pending.length > 0) client.write(pending);
    upstream.pipe(client);
  };
  upstream.on('data', onData);
}

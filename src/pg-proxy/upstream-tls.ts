// TLS between the proxy and PostgreSQL, from libpq's parameters in the upstream URL: `sslmode`
// (disable, prefer, require, verify-ca, verify-full), `sslrootcert`, and `sslcert` + `sslkey` for the
// proxy's own connections. Sessions negotiate as libpq does (SSLRequest, then the handshake on 'S');
// the proxy's own connections (install, drainer, audit) go through `pg` with the same settings.
import { readFileSync } from 'node:fs';
import { connect, isIP, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import { SSL_REQUEST_CODE } from './framing.js';

export const SSL_MODES = ['disable', 'prefer', 'require', 'verify-ca', 'verify-full'] as const;
export type SslMode = (typeof SSL_MODES)[number];

/** libpq parameters about TLS that the proxy implements: each at most once, in lower case. */
const SUPPORTED = ['sslmode', 'sslrootcert', 'sslcert', 'sslkey'];
/** libpq parameters about TLS that the proxy does not implement: refused rather than silently ignored. */
const UNSUPPORTED = ['ssl', 'sslpassword', 'sslcrl', 'sslcrldir', 'sslnegotiation', 'sslsni', 'sslcompression', 'sslcertmode', 'ssl_min_protocol_version', 'ssl_max_protocol_version'];

/** How long a session's connection may take to connect, and to finish its TLS handshake. */
export const UPSTREAM_CONNECT_MS = 10_000;

export interface UpstreamTls {
  readonly mode: Exclude<SslMode, 'disable'>;
  /** Handshake options of a session's connection: no client certificate (see `forProxy`). */
  readonly session: ConnectionOptions;
  /** The same for the proxy's own connections, with `sslcert` + `sslkey` when given. */
  readonly forProxy: ConnectionOptions;
}

/** What `pg` needs for the proxy's own connections: the URL without its TLS parameters, and `ssl`. */
export interface PgConnection {
  readonly connectionString: string;
  readonly ssl: false | ConnectionOptions;
}

export interface UpstreamTarget {
  readonly host: string;
  readonly port: number;
  readonly database: string;
  /** undefined: `sslmode=disable` (the default). */
  readonly tls: UpstreamTls | undefined;
  /** For `pg`; under `prefer`, what the server answered the proxy's probe at start. */
  readonly pg: PgConnection;
}

export class UpstreamTlsError extends Error {}

function readPem(path: string, parameter: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    throw new UpstreamTlsError(`--upstream ${parameter}=${path}: ${(error as Error).message}`);
  }
}

/**
 * The upstream URL's target and TLS settings. The TLS parameters are taken out of the URL that `pg`
 * gets, so that `pg`'s own reading of them (it treats require as verify-full) never applies.
 */
export function parseUpstream(upstream: string): { host: string; port: number; database: string; tls: UpstreamTls | undefined; plainUrl: string } {
  const url = new URL(upstream);
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') throw new UpstreamTlsError('--upstream must be a postgres:// URL');
  const params = url.searchParams;
  for (const name of UNSUPPORTED) {
    if (params.has(name)) throw new UpstreamTlsError(`--upstream: the parameter ${name} is not supported by the proxy (TLS is set with sslmode, sslrootcert, sslcert and sslkey)`);
  }
  // pg takes host and port from the query over the URL's; sessions connect to the URL's: the proxy's
  // fence and drainer would run against another server than its sessions.
  for (const name of ['host', 'hostaddr', 'port']) {
    if (params.has(name)) throw new UpstreamTlsError(`--upstream: the parameter ${name} is not supported by the proxy (give the host and port in the URL: postgres://user@host:port/db)`);
  }
  for (const name of new Set(params.keys())) {
    const lower = name.toLowerCase();
    if (!SUPPORTED.includes(lower) && !UNSUPPORTED.includes(lower)) continue;
    // libpq refuses SSLMODE (unknown), and takes the last of two sslmode: taking either would differ from
    // it, and ignoring SSLMODE would run unencrypted.
    if (name !== lower) throw new UpstreamTlsError(`--upstream: unknown parameter ${name} (libpq's parameter names are lower case: ${lower})`);
    if (params.getAll(name).length > 1) throw new UpstreamTlsError(`--upstream: the parameter ${name} is given more than once`);
  }
  const mode = (params.get('sslmode') ?? 'disable') as SslMode;
  if (!SSL_MODES.includes(mode)) throw new UpstreamTlsError(`--upstream sslmode=${mode}: expected one of ${SSL_MODES.join(', ')}`);
  const rootcert = params.get('sslrootcert');
  const cert = params.get('sslcert');
  const key = params.get('sslkey');
  if ((cert === null) !== (key === null)) throw new UpstreamTlsError('--upstream: sslcert and sslkey go together');
  if (mode === 'disable' && (rootcert !== null || cert !== null)) throw new UpstreamTlsError('--upstream: sslrootcert, sslcert and sslkey need an sslmode other than disable');
  if ((mode === 'verify-ca' || mode === 'verify-full') && rootcert === null) {
    // libpq reads ~/.postgresql/root.crt here; a proxy should not depend on its user's home directory.
    throw new UpstreamTlsError(`--upstream sslmode=${mode} needs sslrootcert=<file of the CA certificates to trust>`);
  }
  for (const name of SUPPORTED) params.delete(name);
  const host = url.hostname.replace(/^\[|\]$/g, '') || '127.0.0.1';
  const database = decodeURIComponent(url.pathname.slice(1)) || decodeURIComponent(url.username) || 'postgres';
  const target = { host, port: Number(url.port || 5432), database, plainUrl: url.toString() };
  if (mode === 'disable') return { ...target, tls: undefined };
  // As libpq: require checks nothing, unless a root certificate is given (then it checks the chain);
  // verify-ca checks the chain; verify-full the chain and the host name.
  const ca = rootcert === null ? undefined : readPem(rootcert, 'sslrootcert');
  const session: ConnectionOptions = {
    host, // what verify-full checks the certificate against
    ...(ca === undefined ? {} : { ca }),
    rejectUnauthorized: ca !== undefined,
    ...(isIP(host) === 0 ? { servername: host } : {}), // SNI takes host names only
    ...(mode === 'verify-full' ? {} : { checkServerIdentity: () => undefined }),
  };
  // pg makes `key` of the object it is given non-enumerable (connection-parameters.js): a spread of
  // forProxy after that has no key. Sessions must not present the certificate anyway.
  const forProxy = cert === null || key === null ? session : { ...session, cert: readPem(cert, 'sslcert'), key: readPem(key, 'sslkey') };
  return { ...target, tls: { mode, session, forProxy } };
}

/**
 * The target, with what `pg` gets for the proxy's own connections. Under `prefer` one probe asks the
 * server whether it speaks TLS (as each session does for itself), since `pg` cannot fall back.
 */
export async function resolveUpstream(upstream: string): Promise<UpstreamTarget> {
  const { plainUrl, ...target } = parseUpstream(upstream);
  let ssl: false | ConnectionOptions = target.tls === undefined ? false : target.tls.forProxy;
  if (target.tls?.mode === 'prefer') {
    const socket = await connectTcp(target.host, target.port);
    try {
      if (!(await askForTls(socket))) ssl = false;
    } finally {
      socket.destroy();
    }
  }
  return { ...target, pg: { connectionString: plainUrl, ssl } };
}

function connectTcp(host: string, port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port });
    const timer = setTimeout(() => socket.destroy(Object.assign(new Error(`could not connect to ${host}:${port} within ${UPSTREAM_CONNECT_MS} ms`), { code: 'ETIMEDOUT' })), UPSTREAM_CONNECT_MS);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.off('error', reject);
      socket.on('error', () => undefined); // whoever reads the socket sees an error as its close
      socket.setNoDelay(true);
      resolve(socket);
    });
    socket.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
}

/** Sends SSLRequest and reads the server's one-byte answer: true for 'S', false for 'N'. */
function askForTls(socket: Socket): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const request = Buffer.alloc(8);
    request.writeInt32BE(8, 0);
    request.writeInt32BE(SSL_REQUEST_CODE, 4);
    const timer = setTimeout(() => done(new UpstreamTlsError(`the upstream did not answer SSLRequest within ${UPSTREAM_CONNECT_MS} ms`)), UPSTREAM_CONNECT_MS);
    const onData = (chunk: Buffer) => {
      // Anything after the one byte would be unencrypted data the server sent before the handshake:
      // refused, as libpq does (it could have been injected by someone on the path).
      if (chunk.length !== 1) return done(new UpstreamTlsError('the upstream answered SSLRequest with more than one byte'));
      if (chunk[0] === 0x53 /* S */) return done(undefined, true);
      if (chunk[0] === 0x4e /* N */) return done(undefined, false);
      return done(new UpstreamTlsError(`the upstream answered SSLRequest with ${JSON.stringify(String.fromCharCode(chunk[0]!))}, not S or N`));
    };
    const onEnd = () => done(new UpstreamTlsError('the upstream closed the connection after SSLRequest'));
    const done = (error: Error | undefined, tls = false) => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('close', onEnd);
      socket.off('error', onEnd);
      socket.pause();
      if (error === undefined) resolve(tls);
      else reject(error);
    };
    socket.on('data', onData);
    socket.once('close', onEnd);
    socket.once('error', onEnd);
    socket.write(request);
  });
}

/** A session's upstream connection: plain, or TLS as the URL's sslmode asks (libpq's negotiation). */
export async function connectSessionUpstream(target: UpstreamTarget, { plain = false } = {}): Promise<Socket> {
  const socket = await connectTcp(target.host, target.port);
  const tls = target.tls;
  if (tls === undefined || plain) return socket;
  let accepted: boolean;
  try {
    accepted = await askForTls(socket);
  } catch (error) {
    socket.destroy();
    throw error;
  }
  if (!accepted) {
    if (tls.mode === 'prefer') return socket;
    socket.destroy();
    throw new UpstreamTlsError(`the upstream does not accept TLS, and sslmode=${tls.mode} requires it`);
  }
  return new Promise((resolve, reject) => {
    const secure = tlsConnect({ ...tls.session, socket });
    const timer = setTimeout(() => secure.destroy(new UpstreamTlsError(`the upstream's TLS handshake did not finish within ${UPSTREAM_CONNECT_MS} ms`)), UPSTREAM_CONNECT_MS);
    secure.once('secureConnect', () => {
      clearTimeout(timer);
      secure.off('error', onError);
      secure.on('error', () => undefined); // as for the plain socket: its close follows
      resolve(secure);
    });
    const onError = (error: Error) => {
      clearTimeout(timer);
      socket.destroy();
      reject(error);
    };
    secure.once('error', onError);
  });
}

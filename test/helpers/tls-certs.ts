// Certificates for the TLS tests, made with openssl in a temporary directory: a CA, PostgreSQL's
// certificate and the proxy's own (both for "localhost" only, no IP address, from that CA), a second
// CA nobody trusts, and two a man in the middle could present: one for localhost from the untrusted
// CA, one from the trusted CA for another host name; and a client certificate for the role certuser.
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Certs {
  readonly dir: string;
  readonly ca: string;
  readonly otherCa: string;
  /** PostgreSQL's */
  readonly cert: string;
  readonly key: string;
  /** The proxy's own */
  readonly proxyCert: string;
  readonly proxyKey: string;
  /** localhost, signed by the other CA */
  readonly untrustedCert: string;
  readonly untrustedKey: string;
  /** evil.example, signed by the trusted CA */
  readonly otherNameCert: string;
  readonly otherNameKey: string;
  /** A client certificate for the role "certuser", from the trusted CA (PostgreSQL's cert authentication) */
  readonly clientCert: string;
  readonly clientKey: string;
}

export function makeCerts(): Certs {
  const dir = mkdtempSync(join(tmpdir(), 'lockstep-tls-'));
  const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  for (const ca of ['ca', 'other-ca']) {
    ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', `/CN=lockstep test ${ca}`, '-keyout', `${ca}.key`, '-out', `${ca}.crt`);
  }
  writeFileSync(join(dir, 'san.ext'), 'subjectAltName = DNS:localhost\n');
  writeFileSync(join(dir, 'evil.ext'), 'subjectAltName = DNS:evil.example\n');
  writeFileSync(join(dir, 'client.ext'), 'extendedKeyUsage = clientAuth\n');
  // [name, CN, CA, extension file]
  const issued: [string, string, string, string][] = [
    ['server', 'localhost', 'ca', 'san.ext'],
    ['proxy', 'localhost', 'ca', 'san.ext'],
    ['untrusted', 'localhost', 'other-ca', 'san.ext'],
    ['other-name', 'evil.example', 'ca', 'evil.ext'],
    ['client', 'certuser', 'ca', 'client.ext'],
  ];
  for (const [name, cn, ca, ext] of issued) {
    ssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=${cn}`, '-keyout', `${name}.key`, '-out', `${name}.csr`);
    ssl('x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.crt`, '-CAkey', `${ca}.key`, '-CAcreateserial', '-days', '2', '-extfile', ext, '-out', `${name}.crt`);
  }
  // PostgreSQL reads its key as its own user, and refuses a key others can read.
  const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
  const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
  chownSync(dir, uid, gid);
  for (const file of ['server.crt', 'server.key']) chownSync(join(dir, file), uid, gid);
  chmodSync(join(dir, 'server.key'), 0o600);
  chmodSync(join(dir, 'client.key'), 0o600); // libpq refuses a key others can read
  chmodSync(dir, 0o755);
  const at = (file: string) => join(dir, file);
  return {
    dir,
    ca: at('ca.crt'),
    otherCa: at('other-ca.crt'),
    cert: at('server.crt'),
    key: at('server.key'),
    proxyCert: at('proxy.crt'),
    proxyKey: at('proxy.key'),
    untrustedCert: at('untrusted.crt'),
    untrustedKey: at('untrusted.key'),
    otherNameCert: at('other-name.crt'),
    otherNameKey: at('other-name.key'),
    clientCert: at('client.crt'),
    clientKey: at('client.key'),
  };
}

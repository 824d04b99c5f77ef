// Loopback names and addresses: what a no-token service may listen on and be addressed as.
import { isIP } from 'node:net';

/** 127.0.0.0/8, ::1 (also as an IPv4-mapped or bracketed address) and `localhost`. */
export function isLoopbackHost(host: string): boolean {
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  const name = bare.toLowerCase();
  if (name === 'localhost') return true;
  if (name === '::1' || name === '0:0:0:0:0:0:0:1') return true;
  const v4 = name.startsWith('::ffff:') ? name.slice('::ffff:'.length) : name;
  return isIP(v4) === 4 && v4.split('.')[0] === '127';
}

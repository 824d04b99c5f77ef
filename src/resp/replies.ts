// RESP replies and their encoding in RESP2 and RESP3. A handler returns a Reply; the connection
// encodes it for the protocol the client chose with HELLO. RESP3's null, map, set, double and
// verbatim types fall back to what Redis itself sends a RESP2 client.

export type Protocol = 2 | 3;

export type Reply =
  | { readonly t: 'simple'; readonly s: string }
  | { readonly t: 'error'; readonly s: string }
  | { readonly t: 'int'; readonly n: number }
  | { readonly t: 'bulk'; readonly b: string | Buffer }
  | { readonly t: 'null' }
  | { readonly t: 'array'; readonly items: readonly Reply[] }
  | { readonly t: 'map'; readonly entries: ReadonlyArray<readonly [Reply, Reply]> }
  | { readonly t: 'set'; readonly items: readonly Reply[] }
  | { readonly t: 'verbatim'; readonly s: string };

export const OK: Reply = Object.freeze({ t: 'simple', s: 'OK' });
export const NULL: Reply = Object.freeze({ t: 'null' });

export const simple = (s: string): Reply => ({ t: 'simple', s });
export const int = (n: number): Reply => ({ t: 'int', n });
export const bulk = (b: string | Buffer): Reply => ({ t: 'bulk', b });
export const array = (items: readonly Reply[]): Reply => ({ t: 'array', items });
export const set = (items: readonly Reply[]): Reply => ({ t: 'set', items });
export const verbatim = (s: string): Reply => ({ t: 'verbatim', s });
/** A map from plain field names; values already replies. */
export const map = (fields: Record<string, Reply>): Reply => ({ t: 'map', entries: Object.entries(fields).map(([k, v]) => [bulk(k), v] as const) });
/** `-PREFIX message`: the first word is the error's code (ERR, NOAUTH, WRONGPASS, LOCKSTEP_E_…). Line breaks are flattened. */
export const error = (s: string): Reply => ({ t: 'error', s: s.replace(/[\r\n]+/g, ' ') });

/** A bulk string reply or nil, for a value that may be absent. */
export const bulkOrNull = (value: string | undefined): Reply => (value === undefined ? NULL : bulk(value));

/** Encodes a reply; strings and Buffers are pushed to `out` in order (the caller writes them out together). */
export function encode(reply: Reply, protocol: Protocol, out: Array<string | Buffer>): void {
  switch (reply.t) {
    case 'simple':
      out.push(`+${reply.s}\r\n`);
      return;
    case 'error':
      out.push(`-${reply.s}\r\n`);
      return;
    case 'int':
      out.push(`:${reply.n}\r\n`);
      return;
    case 'bulk':
      if (typeof reply.b === 'string') {
        out.push(`$${Buffer.byteLength(reply.b)}\r\n${reply.b}\r\n`);
      } else {
        out.push(`$${reply.b.length}\r\n`, reply.b, '\r\n');
      }
      return;
    case 'null':
      out.push(protocol === 3 ? '_\r\n' : '$-1\r\n');
      return;
    case 'verbatim':
      if (protocol === 3) out.push(`=${Buffer.byteLength(reply.s) + 4}\r\ntxt:${reply.s}\r\n`);
      else out.push(`$${Buffer.byteLength(reply.s)}\r\n${reply.s}\r\n`);
      return;
    case 'array':
    case 'set':
      out.push(`${reply.t === 'set' && protocol === 3 ? '~' : '*'}${reply.items.length}\r\n`);
      for (const item of reply.items) encode(item, protocol, out);
      return;
    case 'map':
      out.push(protocol === 3 ? `%${reply.entries.length}\r\n` : `*${reply.entries.length * 2}\r\n`);
      for (const [k, v] of reply.entries) {
        encode(k, protocol, out);
        encode(v, protocol, out);
      }
      return;
  }
}

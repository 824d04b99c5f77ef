// The canonical text of a primary-key value, as the triggers write it (to_jsonb(row) ->> pk), computed
// from a bind parameter or a literal without asking the database. Anything not already in canonical
// form (e.g. '042', an upper-case uuid, a float) is not cached: the statement passes through.
import type { CachedTable } from './tables.js';

const INT_TEXT = /^-?(0|[1-9][0-9]{0,18})$/;
const UUID_TEXT = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const INT_RANGE: Readonly<Record<number, readonly [bigint, bigint]>> = {
  21: [-32768n, 32767n],
  23: [-2147483648n, 2147483647n],
  20: [-9223372036854775808n, 9223372036854775807n],
};
const INT_BYTES: Readonly<Record<number, number>> = { 21: 2, 23: 4, 20: 8 };
const TEXT_OIDS = new Set([0, 25, 1043, 705]);

/** The longest text (sign included) that is in the type's range whatever its digits: no BigInt made for it. */
const ALWAYS_IN_RANGE: Readonly<Record<number, number>> = { 21: 4, 23: 9, 20: 18 };

function canonicalInt(text: string, typeOid: number): string | undefined {
  if (!INT_TEXT.test(text)) return undefined;
  if (text.length <= ALWAYS_IN_RANGE[typeOid]!) return text;
  const value = BigInt(text);
  const [min, max] = INT_RANGE[typeOid]!;
  return value < min || value > max ? undefined : text;
}

/** A literal of the SQL text (simple protocol). */
export function keyOfLiteral(table: CachedTable, value: string, isString: boolean): string | undefined {
  if (value.includes('\0')) return undefined;
  switch (table.keyKind) {
    case 'int':
      return canonicalInt(value, table.keyTypeOid);
    case 'text':
      return isString ? value : undefined;
    case 'uuid':
      return isString && UUID_TEXT.test(value) ? value : undefined;
  }
}

/**
 * A bind parameter: its bytes, its format (0 text, 1 binary) and the type the client declared in
 * Parse (0: unspecified, so the column's type).
 */
export function keyOfParam(table: CachedTable, bytes: Buffer, format: number, declaredOid: number): string | undefined {
  const oid = declaredOid === 0 ? table.keyTypeOid : declaredOid;
  switch (table.keyKind) {
    case 'int': {
      if (INT_RANGE[oid] === undefined) return undefined;
      if (format === 0) return canonicalInt(bytes.toString('utf8'), table.keyTypeOid);
      if (bytes.length !== INT_BYTES[oid]) return undefined;
      const value = oid === 21 ? BigInt(bytes.readInt16BE(0)) : oid === 23 ? BigInt(bytes.readInt32BE(0)) : bytes.readBigInt64BE(0);
      return canonicalInt(String(value), table.keyTypeOid);
    }
    case 'text': {
      if (!TEXT_OIDS.has(declaredOid)) return undefined;
      const text = bytes.toString('utf8');
      // Only bytes that are valid UTF-8 (the session's client_encoding is checked to be UTF8).
      return text.includes('\uFFFD') || text.includes('\0') ? undefined : text;
    }
    case 'uuid': {
      if (oid !== 2950) return undefined;
      if (format === 0) {
        const text = bytes.toString('utf8');
        return UUID_TEXT.test(text) ? text : undefined;
      }
      if (bytes.length !== 16) return undefined;
      const hex = bytes.toString('hex');
      return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
    }
  }
}

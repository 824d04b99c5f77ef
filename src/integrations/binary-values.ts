// Binary column values (PostgreSQL bytea, SQLite BLOB) in the stored row. The row's payload is JSON,
// which keeps a Buffer as {"type":"Buffer","data":[…bytes]}; handed back to the ORM as that object, pg
// would send its JSON text as the bytes (better-sqlite3 refuses it). So the integrations turn it back
// into a Buffer, for the statements they run and for the rows they return.

interface JsonBuffer {
  readonly type: 'Buffer';
  readonly data: readonly number[];
}

/** Whether a value is a Buffer as JSON keeps it (exactly the two keys of Buffer#toJSON). */
export function isJsonBuffer(value: unknown): value is JsonBuffer {
  if (typeof value !== 'object' || value === null || Array.isArray(value) || Buffer.isBuffer(value)) return false;
  const keys = Object.keys(value);
  return keys.length === 2 && (value as { type?: unknown }).type === 'Buffer' && Array.isArray((value as { data?: unknown }).data);
}

/** A Buffer kept as JSON → the Buffer; any other value as it is. */
export const reviveBuffer = (value: unknown): unknown => (isJsonBuffer(value) ? Buffer.from(value.data) : value);

/** A table without binary columns: its rows are returned as they are, no column looked at (every hit). */
export const NO_BINARY_COLUMNS = (_column: string): boolean => false;

/** The row with the values of the given binary columns revived (a copy; the row itself is left alone). */
export function reviveBinaryColumns<R extends Record<string, unknown>>(row: R, isBinary: (column: string) => boolean): R {
  if (isBinary === NO_BINARY_COLUMNS) return row;
  let out: Record<string, unknown> | undefined;
  for (const [column, value] of Object.entries(row)) {
    if (!isBinary(column) || !isJsonBuffer(value)) continue;
    out ??= { ...row };
    out[column] = Buffer.from(value.data);
  }
  return (out ?? row) as R;
}

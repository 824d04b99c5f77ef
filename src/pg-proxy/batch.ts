// A client batch (messages up to a Sync or a Query) and whether it is one cacheable point read:
// [Parse ""] Bind [Describe] Execute Sync on a point-read statement with one parameter, or a simple
// Query of one point read with a literal key. Anything else passes through.
import { readCString, type Message } from './framing.js';
import { keyOfLiteral, keyOfParam } from './keys.js';
import { pointReadOf, type PointRead } from './classify.js';
import type { CachedTable } from './tables.js';

export interface StatementInfo {
  readonly sql: string;
  readonly paramTypes: readonly number[];
  /** The raw Parse message (to re-create the unnamed statement upstream when a hit skipped it). */
  readonly parse: Buffer;
  /** Classified lazily: undefined until asked, null when not a point read. */
  point?: PointRead | null;
}

export function parseMessage(m: Message): StatementInfo & { name: string } {
  const name = readCString(m.body, 0);
  const sql = readCString(m.body, name.next);
  const count = m.body.readInt16BE(sql.next);
  const paramTypes: number[] = [];
  for (let i = 0; i < count; i++) paramTypes.push(m.body.readUInt32BE(sql.next + 2 + 4 * i));
  return { name: name.value, sql: sql.value, paramTypes, parse: m.raw };
}

interface BindInfo {
  portal: string;
  statement: string;
  params: (Buffer | null)[];
  paramFormats: number[];
  /** Where the parameter values lie in the body: the Bind without them is part of the answer's variant. */
  valuesStart: number;
  valuesEnd: number;
}

/** The Bind message without its parameter values (their count kept). */
function bindShape(body: Buffer, bind: BindInfo): Buffer {
  return Buffer.concat([body.subarray(0, bind.valuesStart), Buffer.from([bind.params.length]), body.subarray(bind.valuesEnd)]);
}

export function bindMessage(m: Message): BindInfo {
  const body = m.body;
  const portal = readCString(body, 0);
  const statement = readCString(body, portal.next);
  let offset = statement.next;
  const formatCount = body.readInt16BE(offset);
  offset += 2;
  const paramFormats: number[] = [];
  for (let i = 0; i < formatCount; i++, offset += 2) paramFormats.push(body.readInt16BE(offset));
  const paramsStart = offset;
  const paramCount = body.readInt16BE(offset);
  offset += 2;
  const params: (Buffer | null)[] = [];
  for (let i = 0; i < paramCount; i++) {
    const length = body.readInt32BE(offset);
    offset += 4;
    if (length < 0) params.push(null);
    else {
      params.push(body.subarray(offset, offset + length));
      offset += length;
    }
  }
  return { portal: portal.value, statement: statement.value, params, paramFormats, valuesStart: paramsStart, valuesEnd: offset };
}

/** A cacheable point read found in a batch. */
export interface PlannedRead {
  readonly point: PointRead;
  readonly key: string;
  /** Everything about the request that shapes the answer, except the key. */
  readonly shape: string;
  /** The Parse "" the batch carries, if any (a hit must remember it: see session.ts). */
  readonly unnamedParse: StatementInfo | undefined;
}

export type Plan = { readonly kind: 'read'; readonly read: PlannedRead } | { readonly kind: 'pass'; readonly reason: 'not-cacheable' | 'key-form' };

const PASS: Plan = { kind: 'pass', reason: 'not-cacheable' };

function classify(info: StatementInfo, tables: readonly CachedTable[], protocol: 'simple' | 'extended'): PointRead | null {
  if (info.point === undefined) info.point = pointReadOf(info.sql, tables, protocol) ?? null;
  return info.point;
}

/** A simple-protocol Query. */
export function planQuery(sql: string, tables: readonly CachedTable[]): Plan {
  const point = pointReadOf(sql, tables, 'simple');
  if (point === undefined || point.key.kind !== 'literal') return PASS;
  const key = keyOfLiteral(point.table, point.key.value, point.key.isString);
  if (key === undefined) return { kind: 'pass', reason: 'key-form' };
  return { kind: 'read', read: { point, key, shape: `Q|${point.shape}`, unnamedParse: undefined } };
}

/** An extended-protocol batch ending in Sync. `statements` is the session's (client's) view of its prepared statements. */
export function planExtended(batch: readonly Message[], statements: ReadonlyMap<string, StatementInfo>, tables: readonly CachedTable[]): Plan {
  let i = 0;
  let unnamedParse: StatementInfo | undefined;
  if (batch[i]?.type === 'P') {
    const parsed = parseMessage(batch[i]!);
    if (parsed.name !== '') return PASS; // a new named statement must reach the server
    unnamedParse = parsed;
    i++;
  }
  if (batch[i]?.type !== 'B') return PASS;
  const bindBody = batch[i]!.body;
  const bind = bindMessage(batch[i]!);
  i++;
  const info = bind.statement === '' ? (unnamedParse ?? statements.get('')) : unnamedParse === undefined ? statements.get(bind.statement) : undefined;
  if (info === undefined) return PASS;
  // Most batches that are not point reads stop here (the verdict is kept by text).
  const point = classify(info, tables, 'extended');
  if (point === null) return PASS;
  let describe = '';
  if (batch[i]?.type === 'D') {
    const kind = String.fromCharCode(batch[i]!.body[0]!);
    const name = readCString(batch[i]!.body, 1).value;
    if ((kind === 'P' && name !== bind.portal) || (kind === 'S' && name !== bind.statement)) return PASS;
    describe = batch[i]!.raw.toString('base64');
    i++;
  }
  if (batch[i]?.type !== 'E' || readCString(batch[i]!.body, 0).value !== bind.portal) return PASS;
  const execute = batch[i]!.raw.toString('base64');
  i++;
  if (batch[i]?.type !== 'S' || i !== batch.length - 1) return PASS;
  if (bind.params.length !== 1 || info.paramTypes.length > 1) return PASS;
  const param = bind.params[0];
  if (param === null || param === undefined) return { kind: 'pass', reason: 'key-form' };
  const format = bind.paramFormats.length === 0 ? 0 : bind.paramFormats[0]!;
  const key = keyOfParam(point.table, param, format, info.paramTypes[0] ?? 0);
  if (key === undefined) return { kind: 'pass', reason: 'key-form' };
  const shape = ['X', unnamedParse === undefined ? '' : 'P', info.sql, info.paramTypes.join(','), bindShape(bindBody, bind).toString('base64'), describe, execute].join('|');
  return { kind: 'read', read: { point, key, shape, unnamedParse } };
}

// A client batch (messages up to a Sync or a Query) and whether it is one cacheable point read:
// [Parse ""] Bind [Describe] Execute Sync on a point-read statement with one parameter, or a simple
// Query of one point read with a literal key. Anything else passes through.
import { bindStatementName, byteLength, joinMessages, readCString, type Message } from './framing.js';
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

/**
 * What a session decoded last: drivers send the same Parse "" before every query, and the same Bind,
 * Describe and Execute around a new parameter value. Compared byte for byte (copies, so that the
 * memo does not keep a whole received chunk alive); only decoding is skipped, never a decision.
 */
export interface PlanMemo {
  parse?: { readonly raw: Buffer; readonly info: StatementInfo & { name: string } };
  /**
   * The received Parse that `parse` was last found for: the batch's planning, its fence checks and its
   * tracking each ask for it (no compare after the first). Only while its batch is handled: the session
   * loop clears it before it waits for the next (it holds the chunk the message was received in).
   */
  parsed?: Message | undefined;
  shape?: {
    readonly info: StatementInfo;
    readonly withParse: boolean;
    readonly bindHead: Buffer;
    readonly paramCount: number;
    readonly bindTail: Buffer;
    readonly describe: Buffer | undefined;
    readonly execute: Buffer;
    readonly shape: string;
  };
  /** The last point read planned from a batch that carried its Parse (see fromTemplate). */
  batch?: BatchTemplate;
}

/**
 * A point-read batch's bytes (a copy) and its plan without the key: a batch byte for byte the same
 * except the key parameter's value bytes (so of the same length) has the same plan with its own key.
 * Every decision of planExtended but the key reads bytes outside the value — the statement text and
 * parameter types (its Parse), the formats, portal and statement names, the Describe and Execute —
 * and with a Parse in the batch no prepared statement of the session is looked up.
 */
interface BatchTemplate {
  readonly bytes: Buffer;
  readonly valueStart: number;
  readonly valueEnd: number;
  readonly point: PointRead;
  readonly format: number;
  readonly typeOid: number;
  readonly shape: string;
  readonly unnamedParse: StatementInfo;
}

/** The template's plan for `batch` with its own key, or undefined when the batch differs elsewhere. */
function fromTemplate(batch: readonly Message[], t: BatchTemplate): Plan | undefined {
  if (batch[0]?.type !== 'P') return undefined;
  let length = 0;
  for (const m of batch) length += byteLength(m);
  if (length !== t.bytes.length) return undefined;
  const bytes = joinMessages(batch); // a view of the chunk when the batch came in one
  if (bytes.compare(t.bytes, 0, t.valueStart, 0, t.valueStart) !== 0 || bytes.compare(t.bytes, t.valueEnd, length, t.valueEnd, length) !== 0) return undefined;
  const key = keyOfParam(t.point.table, bytes.subarray(t.valueStart, t.valueEnd), t.format, t.typeOid);
  if (key === undefined) return { kind: 'pass', reason: 'key-form' };
  return { kind: 'read', read: { point: t.point, key, shape: t.shape, unnamedParse: t.unnamedParse, statement: undefined } };
}

/** parseMessage, or the memo's answer when `m` is byte for byte the Parse decoded last. */
export function parseMessageMemo(m: Message, memo: PlanMemo | undefined): StatementInfo & { name: string } {
  if (memo === undefined) return parseMessage(m);
  if (memo.parse !== undefined && (memo.parsed === m || memo.parse.raw.equals(m.raw))) {
    memo.parsed = m;
    return memo.parse.info;
  }
  const raw = Buffer.from(m.raw);
  const info = parseMessage({ type: m.type, body: raw.subarray(5), raw });
  memo.parse = { raw, info };
  memo.parsed = m;
  return info;
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
  /**
   * The name of the prepared statement the read executes when it was parsed in an earlier batch (its
   * columns are those of its Parse: prepared-definition.ts); undefined when the batch carries its Parse
   * or is a simple Query.
   */
  readonly statement: string | undefined;
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
  return { kind: 'read', read: { point, key, shape: `Q|${point.shape}`, unnamedParse: undefined, statement: undefined } };
}

/** The request's shape (see PlannedRead), computed again only when its bytes differ from the memo's. */
function shapeOf(info: StatementInfo, withParse: boolean, bindBody: Buffer, bind: BindInfo, describe: Message | undefined, execute: Message, memo: PlanMemo | undefined): string {
  const bindHead = bindBody.subarray(0, bind.valuesStart);
  const bindTail = bindBody.subarray(bind.valuesEnd);
  const known = memo?.shape;
  if (
    known !== undefined &&
    known.info === info &&
    known.withParse === withParse &&
    known.paramCount === bind.params.length &&
    known.bindHead.equals(bindHead) &&
    known.bindTail.equals(bindTail) &&
    (known.describe === undefined ? describe === undefined : describe !== undefined && known.describe.equals(describe.raw)) &&
    known.execute.equals(execute.raw)
  ) {
    return known.shape;
  }
  const shape = [
    'X',
    withParse ? 'P' : '',
    info.sql,
    info.paramTypes.join(','),
    bindShape(bindBody, bind).toString('base64'),
    describe === undefined ? '' : describe.raw.toString('base64'),
    execute.raw.toString('base64'),
  ].join('|');
  if (memo !== undefined) {
    memo.shape = {
      info,
      withParse,
      bindHead: Buffer.from(bindHead),
      paramCount: bind.params.length,
      bindTail: Buffer.from(bindTail),
      describe: describe === undefined ? undefined : Buffer.from(describe.raw),
      execute: Buffer.from(execute.raw),
      shape,
    };
  }
  return shape;
}

/**
 * An extended-protocol batch ending in Sync. `statements` is the session's (client's) view of its
 * prepared statements; `memo` (optional) the session's PlanMemo.
 */
export function planExtended(batch: readonly Message[], statements: ReadonlyMap<string, StatementInfo>, tables: readonly CachedTable[], memo?: PlanMemo): Plan {
  if (memo?.batch !== undefined) {
    const known = fromTemplate(batch, memo.batch);
    if (known !== undefined) return known;
  }
  let i = 0;
  let unnamedParse: StatementInfo | undefined;
  if (batch[i]?.type === 'P') {
    const parsed = parseMessageMemo(batch[i]!, memo);
    if (parsed.name !== '') return PASS; // a new named statement must reach the server
    unnamedParse = parsed;
    i++;
  }
  if (batch[i]?.type !== 'B') return PASS;
  const bindBody = batch[i]!.body;
  const statement = bindStatementName(bindBody);
  const info = statement === '' ? (unnamedParse ?? statements.get('')) : unnamedParse === undefined ? statements.get(statement) : undefined;
  if (info === undefined) return PASS;
  // Most batches that are not point reads stop here (the verdict is kept by text), before their
  // parameters are decoded.
  const point = classify(info, tables, 'extended');
  if (point === null) return PASS;
  const bind = bindMessage(batch[i]!);
  i++;
  let describe: Message | undefined;
  if (batch[i]?.type === 'D') {
    const kind = String.fromCharCode(batch[i]!.body[0]!);
    const name = readCString(batch[i]!.body, 1).value;
    if ((kind === 'P' && name !== bind.portal) || (kind === 'S' && name !== bind.statement)) return PASS;
    describe = batch[i]!;
    i++;
  }
  if (batch[i]?.type !== 'E' || readCString(batch[i]!.body, 0).value !== bind.portal) return PASS;
  const execute = batch[i]!;
  i++;
  if (batch[i]?.type !== 'S' || i !== batch.length - 1) return PASS;
  if (bind.params.length !== 1 || info.paramTypes.length > 1) return PASS;
  const param = bind.params[0];
  if (param === null || param === undefined) return { kind: 'pass', reason: 'key-form' };
  const format = bind.paramFormats.length === 0 ? 0 : bind.paramFormats[0]!;
  const key = keyOfParam(point.table, param, format, info.paramTypes[0] ?? 0);
  if (key === undefined) return { kind: 'pass', reason: 'key-form' };
  const shape = shapeOf(info, unnamedParse !== undefined, bindBody, bind, describe, execute, memo);
  if (memo !== undefined && unnamedParse !== undefined) {
    // Where the value lies in the batch's bytes: after the Parse, in the Bind's body past its count and length.
    const valueStart = byteLength(batch[0]!) + 5 + bind.valuesStart + 2 + 4;
    memo.batch = { bytes: Buffer.from(joinMessages(batch)), valueStart, valueEnd: valueStart + param.length, point, format, typeOid: info.paramTypes[0] ?? 0, shape, unnamedParse };
  }
  return { kind: 'read', read: { point, key, shape, unnamedParse, statement: unnamedParse === undefined ? statement : undefined } };
}

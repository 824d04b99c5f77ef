// SQL classification with PostgreSQL's own grammar (libpg-query, a WASM build of the server's
// parser). It decides two things and nothing else: is a statement a cacheable point read (a plain
// column list from one cached table, WHERE pk = $1 or a literal), and does a statement touch a cached
// table's definition (DDL → flush). Writes are never inferred from SQL: triggers report them.
import { loadDriver } from '../drivers.js';
import type { CachedTable } from './tables.js';

// libpg-query is an optional peer (only the proxy needs a SQL parser): a missing install fails
// `lockstep/pg-proxy` with one line naming it, like the drivers.
const { loadModule, normalizeSync, parseSync } = await loadDriver('libpg-query', 'lockstep/pg-proxy', () => import('libpg-query'));

let loaded: Promise<void> | undefined;
/** The parser is WASM: load it once before the first classification. */
export function loadParser(): Promise<void> {
  loaded ??= loadModule();
  return loaded;
}

type Node = Record<string, unknown>;

/** The key of a point read: a bind parameter ($1) or a literal in the SQL text. */
export type KeySource = { readonly kind: 'param' } | { readonly kind: 'literal'; readonly value: string; readonly isString: boolean };

export interface PointRead {
  readonly table: CachedTable;
  /** The statement named the table without a schema: it must resolve to the cached table in the session. */
  readonly unqualified: boolean;
  readonly key: KeySource;
  /** The statement with its literal abstracted away (simple protocol), for the answer's cache variant. */
  readonly shape: string;
}

export interface OtherStatement {
  /** Cached tables whose definition or whole contents a statement may change. */
  readonly ddlTables: ReadonlySet<CachedTable>;
  /** DISCARD or DEALLOCATE: the session's prepared statements may be gone. */
  readonly dropsStatements: boolean;
  /**
   * COMMIT PREPARED, or a text that does not parse (PostgreSQL's grammar may still take it): it may
   * commit writes a prepared transaction made, which no session's fence saw (relay.ts).
   */
  readonly commitsPrepared: boolean;
}

// Parsing costs about a millisecond: clients repeat the same texts, so results are kept by text (bounded).
const MAX_REMEMBERED = 2_000;
const parsed = new Map<string, Node[] | undefined>();

function parse(sql: string): Node[] | undefined {
  if (parsed.has(sql)) return parsed.get(sql);
  let stmts: Node[] | undefined;
  try {
    const result = parseSync(sql) as { stmts?: { stmt: Node }[] };
    stmts = (result.stmts ?? []).map((s) => s.stmt);
  } catch {
    stmts = undefined; // PostgreSQL will answer the syntax error itself
  }
  if (sql.length <= 4_096) {
    if (parsed.size >= MAX_REMEMBERED) parsed.delete(parsed.keys().next().value!);
    parsed.set(sql, stmts);
  }
  return stmts;
}

const FORBIDDEN_SELECT_PARTS = ['distinctClause', 'intoClause', 'groupClause', 'havingClause', 'windowClause', 'valuesLists', 'sortClause', 'limitOffset', 'limitCount', 'lockingClause', 'withClause', 'larg', 'rarg'];

function sval(node: unknown): string | undefined {
  const s = (node as { String?: { sval?: string } } | undefined)?.String;
  return s === undefined ? undefined : (s.sval ?? '');
}

/** A ColumnRef's column name if it names `column` of the relation (bare or qualified by its name/alias). */
function columnRefName(node: unknown, qualifiers: ReadonlySet<string>): string | '*' | undefined {
  const ref = (node as { ColumnRef?: { fields?: unknown[] } }).ColumnRef;
  const fields = ref?.fields;
  if (fields === undefined || fields.length === 0 || fields.length > 2) return undefined;
  if (fields.length === 2 && !qualifiers.has(sval(fields[0]) ?? '\0')) return undefined;
  const last = fields[fields.length - 1] as Node;
  if ('A_Star' in last) return '*';
  return sval(last);
}

function findTable(rangeVar: Node, tables: readonly CachedTable[]): { table: CachedTable; unqualified: boolean } | undefined {
  if (rangeVar.catalogname !== undefined || rangeVar.relpersistence !== 'p') return undefined;
  const schema = rangeVar.schemaname as string | undefined;
  const table = tables.find((t) => t.name === rangeVar.relname && (schema === undefined || schema === t.schema));
  return table === undefined ? undefined : { table, unqualified: schema === undefined };
}

// Classifying walks the tree (and, for the simple protocol, normalizes the text): clients send the
// same texts again and again (a driver's unnamed Parse on every query), so verdicts are kept by text,
// per set of cached tables (bounded like the parse trees).
const verdicts = new WeakMap<readonly CachedTable[], Map<string, PointRead | null>>();

/** A point read on a cached table, or undefined. */
export function pointReadOf(sql: string, tables: readonly CachedTable[], protocol: 'simple' | 'extended'): PointRead | undefined {
  let known = verdicts.get(tables);
  if (known === undefined) verdicts.set(tables, (known = new Map()));
  const id = `${protocol === 'simple' ? 's' : 'x'}${sql}`;
  const verdict = known.get(id);
  if (verdict !== undefined) return verdict ?? undefined;
  const found = classifyPointRead(sql, tables, protocol);
  if (sql.length <= 4_096) {
    if (known.size >= MAX_REMEMBERED) known.delete(known.keys().next().value!);
    known.set(id, found ?? null);
  }
  return found;
}

function classifyPointRead(sql: string, tables: readonly CachedTable[], protocol: 'simple' | 'extended'): PointRead | undefined {
  const stmts = parse(sql);
  if (stmts === undefined || stmts.length !== 1) return undefined;
  const select = stmts[0]!.SelectStmt as Node | undefined;
  if (select === undefined || select.op !== 'SETOP_NONE') return undefined;
  if (FORBIDDEN_SELECT_PARTS.some((part) => select[part] !== undefined)) return undefined;
  const from = select.fromClause as Node[] | undefined;
  if (from?.length !== 1 || from[0]!.RangeVar === undefined) return undefined;
  const rangeVar = from[0]!.RangeVar as Node;
  const found = findTable(rangeVar, tables);
  if (found === undefined) return undefined;
  const aliasNode = rangeVar.alias as { aliasname?: string; colnames?: unknown[] } | undefined;
  // `items AS t(a, b)` renames the table's columns in order: `b` would be the column named `val`, and
  // `WHERE b = $1` no lookup by key. The names the statement uses are not the table's: refused.
  if (aliasNode?.colnames !== undefined) return undefined;
  const alias = aliasNode?.aliasname;
  const qualifiers = new Set([alias ?? found.table.name]);
  // The select list: plain columns of the table (or *), nothing that could compute anything.
  const targets = select.targetList as Node[] | undefined;
  if (targets === undefined || targets.length === 0) return undefined;
  for (const target of targets) {
    const res = target.ResTarget as Node | undefined;
    if (res === undefined || res.indirection !== undefined) return undefined;
    const name = columnRefName(res.val, qualifiers);
    if (name === undefined || (name !== '*' && !found.table.columns.has(name))) return undefined;
  }
  // WHERE pk = key (either side), with the plain '=' operator.
  const expr = (select.whereClause as Node | undefined)?.A_Expr as Node | undefined;
  if (expr === undefined || expr.kind !== 'AEXPR_OP') return undefined;
  const op = expr.name as unknown[];
  if (op.length !== 1 || sval(op[0]) !== '=') return undefined;
  const sides = [expr.lexpr, expr.rexpr] as Node[];
  const columnSide = sides.findIndex((side) => columnRefName(side, qualifiers) === found.table.pkColumn);
  if (columnSide < 0) return undefined;
  const other = sides[1 - columnSide]!;
  let key: KeySource;
  if (protocol === 'extended') {
    const param = other.ParamRef as { number?: number } | undefined;
    if (param?.number !== 1) return undefined;
    key = { kind: 'param' };
  } else {
    const constant = other.A_Const as { ival?: { ival?: number }; sval?: { sval?: string }; isnull?: boolean; location?: number } | undefined;
    if (constant === undefined || constant.isnull === true) return undefined;
    if (constant.ival !== undefined) {
      const value = String(constant.ival.ival ?? 0);
      if (!writtenAsDecimal(sql, constant.location, value)) return undefined;
      key = { kind: 'literal', value, isString: false };
    }
    else if (constant.sval !== undefined) key = { kind: 'literal', value: constant.sval.sval ?? '', isString: true };
    else return undefined;
  }
  let shape = sql;
  if (protocol === 'simple') {
    try {
      shape = `${normalizeSync(sql)}|${key.kind === 'literal' && key.isString ? 'string' : 'number'}`;
    } catch {
      return undefined;
    }
  }
  return { table: found.table, unqualified: found.unqualified, key, shape };
}

const DECIMAL_TOKEN_END = /[0-9A-Za-z_.$\x80-\uffff]/;

/**
 * Whether an integer constant is written in the text as its plain decimal digits (`16`, `-16`) at its
 * location (a byte offset). libpg-query is PostgreSQL 18's grammar: since 16 it reads `0x10`, `0o20`,
 * `0b10000` and `1_6` as 16 too, where an older server refuses them ("trailing junk after numeric
 * literal"), so only the spelling every version reads alike is a key (the rest passes through).
 */
function writtenAsDecimal(sql: string, location: number | undefined, value: string): boolean {
  if (location === undefined) return false;
  const bytes = Buffer.from(sql, 'utf8');
  const end = location + value.length;
  if (end > bytes.length || bytes.toString('latin1', location, end) !== value) return false;
  return end === bytes.length || !DECIMAL_TOKEN_END.test(bytes.toString('latin1', end, end + 1));
}

/** The node type of each top-level statement of a text ('SelectStmt', 'TransactionStmt' …); undefined when it does not parse. */
export function statementTypesOf(sql: string): readonly string[] | undefined {
  return parse(sql)?.map((stmt) => Object.keys(stmt)[0] ?? '');
}

const DML = new Set(['SelectStmt', 'InsertStmt', 'UpdateStmt', 'DeleteStmt', 'MergeStmt', 'TransactionStmt', 'VariableSetStmt', 'VariableShowStmt', 'ListenStmt', 'UnlistenStmt', 'NotifyStmt', 'CopyStmt', 'PrepareStmt', 'ExecuteStmt', 'ExplainStmt', 'DeclareCursorStmt', 'FetchStmt', 'ClosePortalStmt']);

/** Every string in a parse tree (names of relations, columns, objects). */
function collectStrings(node: unknown, out: Set<string>): void {
  if (typeof node === 'string') out.add(node);
  else if (Array.isArray(node)) for (const item of node) collectStrings(item, out);
  else if (node !== null && typeof node === 'object') for (const value of Object.values(node)) collectStrings(value, out);
}

/**
 * Statements that change a cached answer without naming its table: an enum's labels or a composite
 * type's attributes (the bytes of a column of that type); role membership or the privileges a role
 * holds, on anything (`GRANT … ON ALL TABLES IN SCHEMA`, `USAGE` on a schema: a hit is served without
 * PostgreSQL's privilege check, to a session whose current_user filled it, and a member that lost the
 * role read the cached rows on); a schema renamed or given another owner (a session's search_path may
 * now resolve the table's bare name to another relation, or none); an operator created or moved, or an
 * extension created, changed or moved (a session's `=` may now be another). Rare: they flush every cached table.
 */
const CHANGES_EVERY_TABLE = new Set(['AlterEnumStmt', 'GrantStmt', 'GrantRoleStmt', 'AlterRoleStmt', 'DropRoleStmt', 'DropOwnedStmt', 'ReassignOwnedStmt', 'CreateExtensionStmt', 'AlterExtensionStmt', 'AlterExtensionContentsStmt']);

function changesEveryTable(stmt: Node, type: string): boolean {
  if (CHANGES_EVERY_TABLE.has(type)) return true;
  if (type === 'AlterTableStmt') return (stmt.AlterTableStmt as { objtype?: unknown }).objtype === 'OBJECT_TYPE'; // ALTER TYPE … ADD/DROP/ALTER ATTRIBUTE
  if (type === 'RenameStmt') return (stmt.RenameStmt as { renameType?: unknown }).renameType === 'OBJECT_SCHEMA';
  if (type === 'AlterOwnerStmt') return (stmt.AlterOwnerStmt as { objectType?: unknown }).objectType === 'OBJECT_SCHEMA';
  // An = operator created, or moved (itself, or with its extension) into a session's search_path, may be
  // what that session's point read calls (read-path.ts, CATALOG_EQUALS_SQL); extensions may bring one.
  if (type === 'DefineStmt') return (stmt.DefineStmt as { kind?: unknown }).kind === 'OBJECT_OPERATOR';
  if (type === 'AlterObjectSchemaStmt') {
    const objectType = (stmt.AlterObjectSchemaStmt as { objectType?: unknown }).objectType;
    return objectType === 'OBJECT_OPERATOR' || objectType === 'OBJECT_EXTENSION';
  }
  return false;
}

// Every statement the proxy relays is looked at (DDL? DISCARD?): verdicts are kept by text, per set of
// cached tables, bounded like the parse trees.
const others = new WeakMap<readonly CachedTable[], Map<string, OtherStatement>>();

/** What a statement the proxy relays may do to the cache. Conservative: an unparseable text touches nothing only because PostgreSQL will reject it too. */
export function otherStatementOf(sql: string, tables: readonly CachedTable[]): OtherStatement {
  let known = others.get(tables);
  if (known === undefined) others.set(tables, (known = new Map()));
  const verdict = known.get(sql);
  if (verdict !== undefined) return verdict;
  const found = classifyOther(sql, tables);
  if (sql.length <= 4_096) {
    if (known.size >= MAX_REMEMBERED) known.delete(known.keys().next().value!);
    known.set(sql, found);
  }
  return found;
}

function classifyOther(sql: string, tables: readonly CachedTable[]): OtherStatement {
  const parsedStmts = parse(sql);
  const stmts = parsedStmts ?? [];
  const ddlTables = new Set<CachedTable>();
  let dropsStatements = false;
  let commitsPrepared = parsedStmts === undefined;
  for (const stmt of stmts) {
    const type = Object.keys(stmt)[0] ?? '';
    if (type === 'DiscardStmt' || type === 'DeallocateStmt') dropsStatements = true;
    if (type === 'TransactionStmt' && (stmt as { TransactionStmt?: { kind?: unknown } }).TransactionStmt?.kind === 'TRANS_STMT_COMMIT_PREPARED') commitsPrepared = true;
    if (changesEveryTable(stmt, type)) {
      for (const table of tables) ddlTables.add(table);
      continue;
    }
    // TRUNCATE has a trigger; other DDL naming a cached table (by any string in its tree) flushes it.
    if (DML.has(type)) continue;
    const strings = new Set<string>();
    collectStrings(stmt, strings);
    for (const table of tables) if (strings.has(table.name)) ddlTables.add(table);
  }
  return { ddlTables, dropsStatements, commitsPrepared };
}

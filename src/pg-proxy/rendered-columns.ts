// Columns whose text is not the row's alone: PostgreSQL renders them from other objects' definitions
// as they are when the row is read. A `regclass`, `regrole`, `regproc`, … (or an `aclitem`) shows the
// referenced object's current name; a composite of a table's (or view's) row type shows that table's
// current columns (`ALTER TABLE addr ADD COLUMN zip` turns `(s,c)` into `(s,c,)`). Renaming that
// object or altering that table writes no row of the cached table and names none of the cached
// tables, so no fence and no DDL flush sees it (a role's rename fires no event trigger at all): an
// answer cached before kept the old text for good. A table whose columns reach such a type — through
// domains, arrays, ranges and composite attributes — is therefore not cached. (A composite type of
// its own, `CREATE TYPE … AS (…)`, changes only by ALTER TYPE, which flushes every cached table.)

/** The catalog types whose output names another object: regproc … regcollation, and aclitem (role names). */
const NAMING_TYPES = '{24,1033,2202,2203,2204,2205,2206,3734,3769,4089,4096,4191}';

/**
 * A boolean SQL expression, true when no column of the table whose oid is `tableOid` (an SQL
 * expression) reaches a type rendered from another object. Every operator is qualified: it runs in
 * the client's session, under its search_path.
 */
export function notRenderedElsewhereSql(tableOid: string): string {
  return `NOT EXISTS (WITH RECURSIVE reached(t) AS (
      SELECT a.atttypid FROM pg_catalog.pg_attribute a
        WHERE a.attrelid OPERATOR(pg_catalog.=) ${tableOid} AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped
    UNION
      SELECT n.t FROM reached r JOIN pg_catalog.pg_type ty ON ty.oid OPERATOR(pg_catalog.=) r.t,
        LATERAL (SELECT ty.typbasetype UNION ALL SELECT ty.typelem
          UNION ALL SELECT a.atttypid FROM pg_catalog.pg_attribute a
            WHERE a.attrelid OPERATOR(pg_catalog.=) ty.typrelid AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped
          UNION ALL SELECT g.rngsubtype FROM pg_catalog.pg_range g
            WHERE g.rngtypid OPERATOR(pg_catalog.=) ty.oid OR g.rngmultitypid OPERATOR(pg_catalog.=) ty.oid) n(t)
        WHERE n.t OPERATOR(pg_catalog.<>) 0)
    SELECT FROM reached r JOIN pg_catalog.pg_type ty ON ty.oid OPERATOR(pg_catalog.=) r.t
      LEFT JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) ty.typrelid
    WHERE ty.oid OPERATOR(pg_catalog.=) ANY ('${NAMING_TYPES}'::pg_catalog.oid[])
      OR (ty.typrelid OPERATOR(pg_catalog.<>) 0 AND c.relkind OPERATOR(pg_catalog.<>) 'c'))`;
}

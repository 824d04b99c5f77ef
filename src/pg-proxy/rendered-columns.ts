// Columns whose text is not the row's alone: PostgreSQL renders them from other objects' definitions
// as they are when the row is read. A `regclass`, `regrole`, `regproc`, … (or an `aclitem`) shows the
// referenced object's current name; a composite of a table's (or view's) row type shows that table's
// current columns (`ALTER TABLE addr ADD COLUMN zip` turns `(s,c)` into `(s,c,)`). Renaming that
// object or altering that table writes no row of the cached table and names none of the cached
// tables, so no fence and no DDL flush sees it (a role's rename fires no event trigger at all): an
// answer cached before kept the old text for good. A table whose columns reach such a type — through
// domains, arrays, ranges and composite attributes — is therefore not cached. (A composite type of
// its own, `CREATE TYPE … AS (…)`, changes only by ALTER TYPE, which flushes every cached table.)
import { quoteIdentifier } from '../store/postgres-schema.js';

/** The catalog types whose output names another object: regproc … regcollation, and aclitem (role names). */
const NAMING_TYPES = '{24,1033,2202,2203,2204,2205,2206,3734,3769,4089,4096,4191}';

/**
 * The proxy schema's function `renders_elsewhere(oid)`: whether a column of the table reaches such a
 * type. PL/pgSQL with a generic plan: the recursive query is planned once per session, not at every
 * fill (planning it took about as long as the rest of the fill's query). STABLE: it reads the catalog
 * in the snapshot of the fill's statement that calls it. `pg_temp` last in its search_path: a session's
 * temporary table named pg_attribute (searched first otherwise) cannot stand in for the catalog.
 */
export function rendersElsewhereFunctionSql(s: string): string {
  return `
CREATE OR REPLACE FUNCTION ${s}.renders_elsewhere(p_rel oid) RETURNS boolean
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp SET plan_cache_mode = force_generic_plan AS $fn$
BEGIN
  RETURN EXISTS (WITH RECURSIVE reached(t) AS (
      SELECT a.atttypid FROM pg_attribute a WHERE a.attrelid = p_rel AND a.attnum > 0 AND NOT a.attisdropped
    UNION
      SELECT n.t FROM reached r,
        LATERAL (SELECT y.oid, y.typbasetype, y.typelem, y.typrelid FROM pg_type y WHERE y.oid = r.t OFFSET 0) ty,
        LATERAL (SELECT ty.typbasetype UNION ALL SELECT ty.typelem
          UNION ALL SELECT a.atttypid FROM pg_attribute a WHERE a.attrelid = ty.typrelid AND a.attnum > 0 AND NOT a.attisdropped
          UNION ALL SELECT g.rngsubtype FROM pg_range g WHERE g.rngtypid = ty.oid OR g.rngmultitypid = ty.oid) n(t)
        WHERE n.t <> 0)
    SELECT FROM reached r JOIN pg_type ty ON ty.oid = r.t LEFT JOIN pg_class c ON c.oid = ty.typrelid
    WHERE ty.oid = ANY ('${NAMING_TYPES}'::oid[]) OR (ty.typrelid <> 0 AND c.relkind <> 'c'));
END $fn$;`;
}

/** A boolean SQL expression, true when no column of the table whose oid is `tableOid` (an SQL expression) reaches such a type. */
export function notRenderedElsewhereSql(schema: string, tableOid: string): string {
  return `NOT ${quoteIdentifier(schema)}.renders_elsewhere(${tableOid})`;
}

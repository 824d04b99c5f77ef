// Writes that bypass Lockstep: the parent updates a hot key's value with plain SQL, through a
// connection of its own, as a migration or an admin console would (and inserts the row when the key
// is deleted at that moment). The store's triggers version
// and journal it; Lockstep learns of it only through the journal. Each becomes a history entry:
// a write with outcome ok and the version the statement committed, read back in its transaction.
import { parseStoreSpec } from '../../backend-specs.js';
import { historyNow, type HistoryEntry } from '../history.js';

export interface BypassWriter {
  /** Sets `key` to `value` with plain SQL; undefined when the statement failed (rolled back). */
  write(namespace: string, key: string, value: string): Promise<HistoryEntry | undefined>;
  close(): Promise<void>;
}

/** The process name of plain-SQL writes in the history. */
export const BYPASS_PROCESS = 'sql';

export async function openBypassWriter(storeSpec: string, timeoutMs: number): Promise<BypassWriter> {
  const spec = parseStoreSpec(storeSpec);
  // The engine's codec is JSON: a plain-SQL writer stores what the engine would have stored.
  const payload = (value: string) => JSON.stringify(value);
  const entry = (key: string, value: string, invokedAt: number, version: number): HistoryEntry => ({
    process: BYPASS_PROCESS,
    key,
    kind: 'write',
    invokedAt,
    returnedAt: historyNow(),
    outcome: 'ok',
    value,
    version,
  });

  switch (spec.kind) {
    case 'postgres': {
      const { default: pg } = await import('pg');
      const { quoteIdentifier } = await import('../../store/postgres-schema.js');
      const client = new pg.Client({ connectionString: spec.connectionString, statement_timeout: timeoutMs });
      client.on('error', () => undefined);
      await client.connect();
      const table = `${quoteIdentifier(spec.schema ?? 'public')}.lockstep_kv`;
      return {
        async write(namespace, key, value) {
          const invokedAt = historyNow();
          const values = [namespace, key, payload(value)];
          try {
            // The AFTER UPDATE trigger sets the new version (RETURNING would report the row as the
            // statement left it), and an INSERT's AFTER trigger may raise it: read it back in the transaction.
            await client.query('BEGIN');
            const updated = await client.query(`UPDATE ${table} SET value = $3 WHERE namespace = $1 AND key = $2`, values);
            // No row: insert it.
            if (updated.rowCount === 0) await client.query(`INSERT INTO ${table} (namespace, key, value) VALUES ($1, $2, $3)`, values);
            const read = await client.query<{ version: string }>(`SELECT version FROM ${table} WHERE namespace = $1 AND key = $2`, [namespace, key]);
            await client.query('COMMIT');
            return entry(key, value, invokedAt, Number(read.rows[0]!.version));
          } catch {
            await client.query('ROLLBACK').catch(() => undefined);
            return undefined; // a statement timeout, or a concurrent insert of the key: rolled back
          }
        },
        close: () => client.end().catch(() => undefined),
      };
    }
    case 'sqlite': {
      const { default: Database } = await import('better-sqlite3');
      const db = new Database(spec.path, { timeout: timeoutMs });
      // The AFTER UPDATE trigger sets the version: read it back in the same transaction.
      const update = db.prepare('UPDATE lockstep_kv SET value = ? WHERE namespace = ? AND key = ?');
      const insert = db.prepare('INSERT INTO lockstep_kv (value, namespace, key) VALUES (?, ?, ?)');
      const select = db.prepare('SELECT version FROM lockstep_kv WHERE namespace = ? AND key = ?');
      const run = db.transaction((namespace: string, key: string, value: string) => {
        if (update.run(payload(value), namespace, key).changes === 0) insert.run(payload(value), namespace, key);
        return (select.get(namespace, key) as { version: number }).version;
      });
      return {
        async write(namespace, key, value) {
          const invokedAt = historyNow();
          try {
            return entry(key, value, invokedAt, run.immediate(namespace, key, value));
          } catch {
            return undefined; // SQLITE_BUSY: rolled back
          }
        },
        close: async () => {
          db.close();
        },
      };
    }
    case 'mysql': {
      const mysql = await import('mysql2/promise');
      const connection = await mysql.createConnection({ uri: spec.uri });
      const [[row]] = (await connection.query('SELECT DATABASE() AS db')) as unknown as [[{ db: string }]];
      const table = `\`${row.db}\`.\`lockstep_kv\``;
      return {
        async write(namespace, key, value) {
          const invokedAt = historyNow();
          try {
            await connection.query('BEGIN');
            const limit = `SET STATEMENT max_statement_time = ${timeoutMs / 1000} FOR`;
            const [result] = (await connection.query(`${limit} UPDATE ${table} SET value = ? WHERE namespace = ? AND \`key\` = ?`, [
              payload(value),
              namespace,
              key,
            ])) as unknown as [{ affectedRows: number }];
            if (result.affectedRows === 0) {
              await connection.query(`${limit} INSERT INTO ${table} (namespace, \`key\`, value) VALUES (?, ?, ?)`, [namespace, key, payload(value)]);
            }
            const [rows] = (await connection.query(`SELECT version FROM ${table} WHERE namespace = ? AND \`key\` = ?`, [namespace, key])) as unknown as [
              Array<{ version: number }>,
            ];
            await connection.query('COMMIT');
            return rows[0] === undefined ? undefined : entry(key, value, invokedAt, Number(rows[0].version));
          } catch {
            await connection.query('ROLLBACK').catch(() => undefined);
            return undefined;
          }
        },
        close: () => connection.end().catch(() => undefined),
      };
    }
  }
}

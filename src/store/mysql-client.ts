// The slice of mysql2 the MariaDB store calls: a mysql2/promise Pool satisfies MysqlPool.
export type MysqlValue = string | number | Buffer | null;

export interface MysqlQueryOptions {
  readonly sql: string;
  readonly rowsAsArray?: boolean;
  readonly namedPlaceholders?: boolean;
  /** mysql2's client-side deadline of this statement, in ms: it fails with PROTOCOL_SEQUENCE_TIMEOUT. */
  readonly timeout?: number;
}

export interface MysqlConnection {
  /** A prepared statement (binary protocol): values never pass through SQL text. */
  execute(options: MysqlQueryOptions, values?: MysqlValue[]): Promise<[unknown, unknown]>;
  /** Text protocol, used without values for DDL (CREATE TRIGGER and CREATE FUNCTION cannot be prepared). */
  query(options: MysqlQueryOptions): Promise<[unknown, unknown]>;
  release(): void;
  destroy(): void;
  /**
   * mysql2's connection inside the wrapper a checkout hands out, the same at every checkout: the
   * store learns the server connection behind it once (a wrapper without it costs that query at
   * every checkout).
   */
  readonly connection?: object;
}

export interface MysqlPool {
  getConnection(): Promise<MysqlConnection>;
  end(): Promise<void>;
}

// The slice of `pg` the PostgreSQL stores call: a pg.Pool satisfies PostgresPool, and any client
// with these few methods will do (tests, other drivers).
export interface PostgresQueryConfig {
  readonly text: string;
  readonly values?: unknown[];
  /** A named prepared statement: parsed once per connection. */
  readonly name?: string;
  /** pg's client-side deadline of this query, in ms: the query fails with "Query read timeout". */
  readonly query_timeout?: number;
  /** pg's type parsers of this query's results (pg's own `types` config; default the client's). */
  readonly types?: { getTypeParser(oid: number, format?: string): unknown };
}

export interface PostgresQueryResult {
  readonly rows: Array<Record<string, unknown>>;
}

export interface PostgresNotification {
  readonly channel: string;
  readonly payload?: string | undefined;
}

export interface PostgresClient {
  query(config: PostgresQueryConfig): Promise<PostgresQueryResult>;
  /** Back to the pool; `true` or an error destroys the connection instead. */
  release(destroy?: boolean | Error): void;
  on(event: 'error', listener: (error: Error) => void): unknown;
  on(event: 'end', listener: () => void): unknown;
  on(event: 'notification', listener: (message: PostgresNotification) => void): unknown;
}

export interface PostgresPool {
  connect(): Promise<PostgresClient>;
  end(): Promise<void>;
  /** pg.Pool's 'connect' event: a new connection, before it is handed out (postgres-connection-errors.ts). */
  on?(event: 'connect', listener: (client: PostgresClient) => void): unknown;
}

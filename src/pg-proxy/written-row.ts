// One journal row a transaction wrote, as the fence reads it back or a write announcement names it
// (a module of its own: write-marker.ts, which the schema imports, needs the type without the fence).
export interface WrittenRow {
  readonly id: number;
  readonly table: string;
  readonly key: string | null;
  readonly version: number;
}

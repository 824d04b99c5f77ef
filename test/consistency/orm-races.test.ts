// Races a–d of consistency-protocol.md (pattern-races.ts) through each ORM integration, on SQLite and
// on PostgreSQL: Drizzle, Kysely and TypeORM over a table of their own, writes and reads as an
// application makes them. Their teeth: orm-races-teeth.test.ts.
import { runPatternRaces } from './pattern-races.js';
import { drizzlePattern, kyselyPattern, typeormPattern } from './orm-patterns.js';

for (const dialect of ['sqlite', 'postgres'] as const) {
  runPatternRaces('Drizzle', drizzlePattern, { dialect });
  runPatternRaces('Kysely', kyselyPattern, { dialect });
  runPatternRaces('TypeORM', typeormPattern, { dialect });
}

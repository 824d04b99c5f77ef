// A TypeORM entity written through Lockstep, on embedded defaults: a SQLite file (driver
// 'better-sqlite3') and an in-memory cache. The entity is an EntitySchema, so no decorators (and no
// experimentalDecorators / emitDecoratorMetadata) are needed. ESM with top-level await.
// Run: node --import tsx examples/typeorm.ts
import { DataSource, EntitySchema } from 'typeorm';
import { createMemoryCache } from '../src/index.js';
import { typeormTable } from '../src/integrations/typeorm.js';

interface Todo {
  id: number;
  title: string;
  done: boolean;
  version: number;
}

const TodoEntity = new EntitySchema<Todo>({
  name: 'Todo',
  tableName: 'todos',
  columns: {
    id: { type: Number, primary: true },
    title: { type: String },
    done: { type: Boolean, default: false },
    version: { type: Number, version: true }, // TypeORM's @VersionColumn: the version Lockstep fences with
  },
});

const dataSource = new DataSource({
  type: 'better-sqlite3',
  database: process.env.LOCKSTEP_EXAMPLE_DB ?? 'example.db',
  entities: [TodoEntity],
  synchronize: true, // creates the table (use migrations in production)
});
await dataSource.initialize();

// Todos by primary key, cached as `todos:<id>` for 10 minutes.
const cached = await typeormTable(dataSource, TodoEntity, { cache: createMemoryCache({ maxEntries: 10_000 }), ttl: '10m' });

console.log('inserted', await cached.insert({ id: 1, title: 'write the README' }));
console.log('updated', await cached.update(1, { done: true }));
console.log('read from', (await cached.repository.engine.readEntry('1')).source);

// TypeORM's own save() does not go through the integration: the table's triggers version and journal it.
const todos = dataSource.getRepository(TodoEntity);
await todos.save({ ...(await todos.findOneByOrFail({ id: 1 })), title: 'edited with plain TypeORM' });
await cached.repository.engine.drainJournal(); // the poller does this every 100 ms
console.log('after a direct save()', (await cached.findById(1))?.title);

await cached.delete(1);
console.log('after delete', await cached.findById(1));

await cached.close();
await dataSource.destroy();

// The inline helper and the decorators as PatternUnderTest (pattern-races.ts), over an application
// table of their own (test/helpers/user-table.ts) in the fixture's SQLite file.
import { cacheKeyOf } from '../../src/keys.js';
import { cachedRead, deletesThrough, writesThrough, type InlineLockstep } from '../../src/patterns/decorators.js';
import type { EngineFixture } from '../helpers/engine-fixture.js';
import { createUserTable, type UserRow, type UserTable } from '../helpers/user-table.js';
import type { PatternUnderTest } from './pattern-races.js';

export function inlinePattern(f: EngineFixture<unknown>): PatternUnderTest {
  const users = createUserTable(f.rawConnection());
  const lockstep = f.engine;
  return {
    write: (id, name) =>
      lockstep.writeThrough(id, async () => {
        const row = users.save(id, name);
        return { value: row.name, version: row.version };
      }),
    read: (id) =>
      lockstep.readThrough<string>(id, async () => {
        const row = users.find(id);
        return row && { value: row.name, version: row.version };
      }),
    delete: (id) => lockstep.deleteThrough(id, async () => users.remove(id)),
    seed: async (id, name) => void users.save(id, name),
    cacheKey: (id) => cacheKeyOf('test', id),
  };
}

class UserService {
  constructor(
    readonly lockstep: InlineLockstep,
    private readonly users: UserTable,
  ) {}

  @writesThrough({ key: (id) => `user:${id}`, version: (row) => row.version })
  async rename(id: string, name: string): Promise<UserRow> {
    return this.users.save(id, name);
  }

  @cachedRead({ key: (id) => `user:${id}`, version: (row) => row.version })
  async find(id: string): Promise<UserRow | undefined> {
    return this.users.find(id);
  }

  @deletesThrough({ key: (id) => `user:${id}`, version: (result) => result.version })
  async remove(id: string): Promise<{ version: number; existed: boolean }> {
    return this.users.remove(id);
  }
}

export function decoratorPattern(f: EngineFixture<unknown>): PatternUnderTest {
  const users = createUserTable(f.rawConnection());
  const service = new UserService(f.another({ namespace: 'deco' }), users);
  return {
    write: (id, name) => service.rename(id, name),
    read: async (id) => (await service.find(id))?.name,
    delete: (id) => service.remove(id),
    seed: async (id, name) => void users.save(id, name),
    cacheKey: (id) => cacheKeyOf('deco', `user:${id}`),
  };
}

// The standard decorators over the inline helpers: where they find Lockstep, what they cache, and
// that their key functions are typed by the method (checked by tsc over this file).
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { InvalidOptionError } from '../../src/errors.js';
import { cachedRead, deletesThrough, writesThrough, type InlineLockstep } from '../../src/patterns/decorators.js';
import { createEngineFixture, type EngineFixture } from '../helpers/engine-fixture.js';
import { createUserTable, type UserRow, type UserTable } from '../helpers/user-table.js';

let f: EngineFixture<unknown>;
let users: UserTable;
afterEach(() => f.close());
const setup = async () => {
  f = await createEngineFixture<unknown>();
  users = createUserTable(f.rawConnection());
};

class Users {
  calls = 0;
  constructor(
    readonly lockstep: InlineLockstep,
    private readonly table: UserTable,
  ) {}

  @writesThrough({ key: (id) => `user:${id}`, version: (row) => row.version, value: (row) => ({ name: row.name }) })
  async rename(id: string, name: string): Promise<UserRow> {
    if (name === '') throw new RangeError('a name is required');
    return this.table.save(id, name);
  }

  @cachedRead({ key: (id) => `user:${id}`, version: () => 1 })
  async find(id: string): Promise<{ name: string } | undefined> {
    this.calls++;
    const row = this.table.find(id);
    return row && { name: row.name };
  }

  @deletesThrough({ key: (id) => `user:${id}`, version: (result) => result.version })
  async remove(id: string): Promise<{ version: number; existed: boolean }> {
    return this.table.remove(id);
  }
}

describe('decorators', () => {
  it('a write publishes the `value` projection at the row\'s version; reads hit without running the method', async () => {
    await setup();
    const service = new Users(f.engine, users);
    const row = await service.rename('1', 'Ada');
    assert.deepEqual(row, { id: '1', name: 'Ada', version: 1 }); // the method's own result
    assert.deepEqual(await service.find('1'), { name: 'Ada' });
    assert.equal(service.calls, 0);
    const record = await f.cache.peek('test:user:1');
    assert.ok(record?.kind === 'value' && record.version === 1);
    await service.remove('1');
    assert.equal(await service.find('1'), undefined);
    assert.equal(service.calls, 0);
  });

  it('a read miss runs the method once and caches its answer', async () => {
    await setup();
    users.save('1', 'Ada');
    const service = new Users(f.engine, users);
    assert.deepEqual(await Promise.all([service.find('1'), service.find('1'), service.find('1')]), [{ name: 'Ada' }, { name: 'Ada' }, { name: 'Ada' }]);
    assert.equal(service.calls, 1);
  });

  it('the method\'s own errors reach the caller unchanged and release the lease', async () => {
    await setup();
    const service = new Users(f.engine, users);
    await assert.rejects(service.rename('1', ''), RangeError);
    assert.equal(await f.cache.peek('test:user:1'), undefined);
  });

  it('`lockstep: (self) => …` finds an instance kept in a private field', async () => {
    await setup();
    const engine = f.engine;
    class Private {
      readonly #lockstep = engine;
      @writesThrough({ key: (id: string) => id, version: (r) => r.version, lockstep: (self) => self.#lockstep })
      async save(id: string): Promise<{ version: number }> {
        return { version: id.length };
      }
    }
    await new Private().save('abc');
    assert.equal((await f.cache.peek('test:abc'))?.kind, 'value');
  });

  it('without an instance to find, the call fails with E_INVALID_OPTION naming the method', async () => {
    await setup();
    const service = new Users(undefined as unknown as InlineLockstep, users);
    await assert.rejects(service.find('1'), (e: unknown) => e instanceof InvalidOptionError && /find: no Lockstep instance/.test(e.message));
  });

  it('key functions are typed by the method (compile-time checks)', () => {
    const declare = () => {
      class NoLockstep {
        // @ts-expect-error: no `lockstep` property and no `lockstep` option
        @cachedRead({ key: (id: string) => id, version: () => 1 })
        async find(id: string): Promise<string | undefined> {
          return id;
        }
      }
      class WrongKey {
        lockstep = f.engine;
        // @ts-expect-error: the key takes a number, the method a string
        @writesThrough({ key: (id: number) => String(id), version: () => 1 })
        async save(id: string): Promise<string> {
          return id;
        }
        @writesThrough({ key: (id, n) => `${id.toUpperCase()}:${n.toFixed(0)}`, version: () => 1 })
        async save2(id: string, n: number): Promise<string> {
          return id + n;
        }
      }
      return [NoLockstep, WrongKey];
    };
    assert.equal(typeof declare, 'function');
  });
});

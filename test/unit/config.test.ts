// Settings resolution: precedence (flags > environment > file > defaults), the derived names, and
// messages that name the source of a bad value.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { envOf, flagOf, resolveConfig, settingsHelp, integerIn, type Setting } from '../../src/cli/config.js';
import { serveSettings } from '../../src/cli/serve-settings.js';
import { InvalidOptionError } from '../../src/errors.js';

const noFile = (path: string): string => {
  throw new Error(`ENOENT: no such file ${path}`);
};
const file = (content: unknown) => (): string => JSON.stringify(content);
const resolve = (argv: string[], env: Record<string, string> = {}, readFile: (path: string) => string = noFile) =>
  resolveConfig(serveSettings, { argv, env, readFile });

function rejects(fn: () => unknown, message: RegExp): void {
  assert.throws(fn, (error: Error) => {
    assert.ok(error instanceof InvalidOptionError, `${error.name}: ${error.message}`);
    assert.match(error.message, message);
    return true;
  });
}

describe('resolveConfig', () => {
  it('falls back to the defaults, recording where each setting came from', () => {
    const { config, sources, help } = resolve([]);
    assert.equal(help, false);
    assert.equal(config.port, 8080);
    assert.equal(config.host, '127.0.0.1');
    assert.equal(config.store.spec, 'sqlite:./lockstep.db');
    assert.equal(config.cache.kind, 'memory');
    assert.equal(config.cacheMaxEntries, 100_000);
    assert.equal(config.token, undefined);
    assert.equal(config.failurePolicy, 'pragmatic');
    assert.equal(config.logLevel, 'info');
    assert.equal(config.shutdownGraceMs, 10_000);
    assert.ok(Object.values(sources).every((s) => s === 'default'));
    assert.ok(Object.isFrozen(config));
  });

  it('takes flags over the environment over the file over the defaults, setting by setting', () => {
    const readFile = file({ port: 7001, host: 'localhost', cacheMaxEntries: 5, logLevel: 'warn' });
    const env = { LOCKSTEP_CONFIG: 'cfg.json', LOCKSTEP_PORT: '7002', LOCKSTEP_HOST: '127.0.0.2' };
    const { config, sources } = resolve(['--port', '7003'], env, readFile);
    assert.equal(config.port, 7003);
    assert.equal(sources.port, '--port');
    assert.equal(config.host, '127.0.0.2');
    assert.equal(sources.host, 'LOCKSTEP_HOST');
    assert.equal(config.cacheMaxEntries, 5);
    assert.equal(sources.cacheMaxEntries, '"cacheMaxEntries" in cfg.json');
    assert.equal(config.logLevel, 'warn');
    assert.equal(config.failurePolicy, 'pragmatic');
    assert.equal(sources.failurePolicy, 'default');
  });

  it('reads --config over LOCKSTEP_CONFIG, and treats an empty variable as unset', () => {
    const read: string[] = [];
    const readFile = (path: string): string => {
      read.push(path);
      return '{"port": 1234}';
    };
    assert.equal(resolve(['--config', 'flag.json'], { LOCKSTEP_CONFIG: 'env.json' }, readFile).config.port, 1234);
    assert.deepEqual(read, ['flag.json']);
    assert.equal(resolve([], { LOCKSTEP_PORT: '', LOCKSTEP_CONFIG: '' }).config.port, 8080);
  });

  it('accepts numbers as strings or JSON numbers, and parses backend specs from any source', () => {
    assert.equal(resolve(['--config', 'x.json'], {}, file({ port: '9000' })).config.port, 9000);
    const { config } = resolve(['--config', 'x.json'], {}, file({ store: 'postgres://u@h:5432/db?schema=s1', cache: 'redis://127.0.0.1:6379' }));
    assert.equal(config.store.kind, 'postgres');
    assert.equal(config.cache.kind, 'redis');
  });

  it('names the source of a bad value', () => {
    rejects(() => resolve(['--port', '70000']), /^--port must be an integer from 0 to 65535 \(got "70000"\)$/);
    rejects(() => resolve([], { LOCKSTEP_PORT: 'eighty' }), /^LOCKSTEP_PORT must be an integer/);
    rejects(() => resolve(['--config', 'c.json'], {}, file({ port: 80.5 })), /^"port" in c\.json must be an integer/);
    rejects(() => resolve(['--config', 'c.json'], {}, file({ host: 42 })), /^"host" in c\.json must be a string \(got number\)/);
    rejects(() => resolve([], { LOCKSTEP_FAILURE_POLICY: 'yolo' }), /^LOCKSTEP_FAILURE_POLICY must be pragmatic or strict/);
    rejects(() => resolve(['--log-level', 'loud']), /^--log-level must be fatal, error, warn, info, debug, trace or silent/);
    rejects(() => resolve(['--token', '']), /^--token must not be empty$/);
    rejects(() => resolve([], { LOCKSTEP_STORE: 'sqlite:' }), /^LOCKSTEP_STORE: a sqlite store needs a file path/);
    rejects(() => resolve(['--cache', 'memcached']), /^--cache: unsupported cache "memcached": supported caches are memory/);
  });

  it('never echoes a token in a message', () => {
    rejects(() => resolve(['--config', 'c.json'], {}, file({ token: '' })), /^"token" in c\.json must not be empty$/);
    rejects(() => resolve(['--config', 'c.json'], {}, file({ token: 12345678 })), /must be a string \(got number\)$/);
  });

  it('refuses a config file that is missing, not JSON, not an object, or has an unknown key', () => {
    rejects(() => resolve(['--config', 'gone.json']), /^cannot read config file gone\.json: ENOENT/);
    rejects(() => resolve(['--config', 'c.json'], {}, () => '{port: 1}'), /^config file c\.json is not valid JSON/);
    rejects(() => resolve(['--config', 'c.json'], {}, () => '[1]'), /^config file c\.json must hold a JSON object/);
    rejects(() => resolve(['--config', 'c.json'], {}, file({ prot: 1 })), /^unknown key "prot" in config file c\.json \(known keys: port, host/);
    rejects(() => resolve(['--config', 'c.json'], {}, file({ config: 'other.json' })), /unknown key "config"/);
    rejects(() => resolve(['--config', '']), /--config must not be empty/);
  });

  it('refuses unknown flags and positionals (usage errors)', () => {
    assert.throws(() => resolve(['--bogus']), /unknown option --bogus/);
    assert.throws(() => resolve(['extra']), /unexpected argument 'extra'/);
    assert.equal(resolve(['-h']).help, true);
  });
});

describe('a settings table', () => {
  it('derives the flag and variable from the name', () => {
    assert.equal(flagOf('cacheMaxEntries'), 'cache-max-entries');
    assert.equal(envOf('cacheMaxEntries'), 'LOCKSTEP_CACHE_MAX_ENTRIES');
    assert.equal(envOf('port'), 'LOCKSTEP_PORT');
  });

  it('takes a new setting as one entry: flag, variable, file key and help included', () => {
    const settings = { ...serveSettings, rateLimitPerSecond: { arg: 'N', help: 'requests per second per token', default: 100, parse: integerIn(1, 1e6) } satisfies Setting<number> };
    const input = { argv: ['--rate-limit-per-second', '5'], env: {}, readFile: noFile };
    assert.equal(resolveConfig(settings, input).config.rateLimitPerSecond, 5);
    assert.equal(resolveConfig(settings, { argv: [], env: { LOCKSTEP_RATE_LIMIT_PER_SECOND: '7' } }).config.rateLimitPerSecond, 7);
    assert.equal(resolveConfig(settings, { argv: ['--config', 'f'], env: {}, readFile: file({ rateLimitPerSecond: 9 }) }).config.rateLimitPerSecond, 9);
    const help = settingsHelp(settings);
    assert.match(help, /--rate-limit-per-second N\s+requests per second per token/);
    assert.match(help, /\[LOCKSTEP_RATE_LIMIT_PER_SECOND, "rateLimitPerSecond" in the file; default 100\]/);
  });
});

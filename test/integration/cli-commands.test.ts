// The `lockstep` commands as real processes: get/put/del/inspect against a temporary SQLite store
// through the engine, and against a `lockstep serve` started here (--url, with a token); --json
// parsed; --help and unknown flags for every command; a tiny bench. No external service needed.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';

const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
// Resolved here: the children run in temporary directories where `tsx` is not resolvable by name.
const TSX = import.meta.resolve('tsx');
// A backstop, not a timing check: each run compiles the CLI with tsx, ~1 s quiet, over 30 s once beside a suite at load 17.
const RUN_TIMEOUT_MS = 120_000;
const COMMANDS = ['serve', 'get', 'put', 'del', 'inspect', 'audit', 'bench', 'chaos'] as const;

interface Result {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

const children = new Set<ChildProcess>();
const dirs: string[] = [];

after(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await Promise.all(dirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'lockstep-cli-commands-'));
  dirs.push(dir);
  return dir;
}

function start(args: readonly string[], options: { cwd?: string; env?: Record<string, string>; stdin?: string } = {}): ChildProcess {
  // The test's own LOCKSTEP_* variables (and the runner's context) must not leak into the command.
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('LOCKSTEP_') && name !== 'NODE_TEST_CONTEXT'));
  const child = spawn(process.execPath, ['--import', TSX, MAIN, ...args], {
    cwd: options.cwd ?? tmpdir(),
    env: { ...inherited, ...options.env },
    stdio: [options.stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
  });
  if (options.stdin !== undefined) child.stdin!.end(options.stdin);
  children.add(child);
  return child;
}

/** Runs `lockstep <args>` to completion (killed after RUN_TIMEOUT_MS). */
function lockstep(args: readonly string[], options: { cwd?: string; env?: Record<string, string>; stdin?: string } = {}): Promise<Result> {
  const child = start(args, options);
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const timer = setTimeout(() => child.kill('SIGKILL'), RUN_TIMEOUT_MS);
  return new Promise((resolve) => {
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

const show = (r: Result) => `exit ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`;

/** At most `width` runs at once: the machine has two cores and other tests run beside this one. */
async function inBatches<T, R>(items: readonly T[], width: number, run: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = [];
  for (let i = 0; i < items.length; i += width) results.push(...(await Promise.all(items.slice(i, i + width).map(run))));
  return results;
}

describe('lockstep --help and usage errors', () => {
  it('every command answers --help with its usage, options, examples and exit status (exit 0)', async () => {
    const top = await lockstep(['--help']);
    assert.equal(top.code, 0, show(top));
    for (const name of COMMANDS) assert.match(top.stdout, new RegExp(`^ {2}${name} `, 'm'), `${name} is listed`);
    // Every command `lockstep --help` lists (token and proxy have test files of their own) is in the
    // README's command table and has a section in docs/cli.md.
    const listed = [...top.stdout.matchAll(/^ {2}([a-z]+) {2,}/gm)].map((m) => m[1]!);
    assert.ok(listed.includes('token') && listed.includes('proxy'), listed.join(', '));
    const readme = await readFile(new URL('../../README.md', import.meta.url), 'utf8');
    const cliDoc = await readFile(new URL('../../docs/cli.md', import.meta.url), 'utf8');
    for (const name of listed) {
      assert.match(readme, new RegExp(`^\\| \\[?\`lockstep ${name}\\b`, 'm'), `README's command table lists ${name}`);
      assert.match(cliDoc, new RegExp(`^## \`lockstep ${name}\\b`, 'm'), `docs/cli.md has a section for ${name}`);
    }

    const helps = await inBatches(COMMANDS, 4, (name) => lockstep([name, '--help']));
    // Options each command must list; `--store SPEC` for all that open backends.
    const expected: Record<(typeof COMMANDS)[number], readonly string[]> = {
      serve: ['--port N', '--store SPEC', '--cache SPEC', '--token T'],
      get: ['--store SPEC', '--cache SPEC', '--url URL', '--token T', '--json'],
      put: ['--store SPEC', '--url URL', '--ttl DURATION', '--json'],
      del: ['--store SPEC', '--url URL', '--json'],
      inspect: ['--store SPEC', '--url URL', '--json'],
      audit: ['--store SPEC', '--namespace NS', '--repair', '--json'],
      bench: ['--suite NAME', '--quick', '--json', '--store SPEC', '--ops N', '--concurrency N', '--read-ratio R', '--keys N', '--value-bytes N', '--seed N'],
      chaos: ['--store SPEC', '--processes N', '--ops N', '--json'],
    };
    COMMANDS.forEach((name, i) => {
      const r = helps[i]!;
      assert.equal(r.code, 0, `${name} --help\n${show(r)}`);
      assert.match(r.stdout, new RegExp(`^Usage: lockstep ${name}`), name);
      for (const option of [...expected[name], '-h, --help']) assert.ok(r.stdout.includes(option), `${name} --help lists ${option}`);
      assert.match(r.stdout, new RegExp(`^Examples:\\n {2}.*lockstep ${name}`, 'm'), `${name} --help has examples`);
      assert.match(r.stdout, /^Exit status: .*[0-3] /m, `${name} --help documents its exit status`);
      assert.equal(r.stderr, '', name);
      assert.ok(cliDoc.includes(`\n${r.stdout.trimEnd()}\n`), `docs/cli.md carries ${name}'s current --help text`);
    });

    const viaHelp = await lockstep(['help', 'get']);
    assert.equal(viaHelp.code, 0, show(viaHelp));
    assert.equal(viaHelp.stdout, helps[COMMANDS.indexOf('get')]!.stdout, "'lockstep help get' prints get's help");
  });

  it('an unknown flag is a usage error (exit 2) naming the flag, for every command', async () => {
    const results = await inBatches(COMMANDS, 4, (name) => lockstep([name, 'ns', 'k', '--frobnicate']));
    COMMANDS.forEach((name, i) => {
      const r = results[i]!;
      assert.equal(r.code, 2, `${name}\n${show(r)}`);
      assert.match(r.stderr, new RegExp(`^lockstep ${name}: unknown option --frobnicate\\nRun 'lockstep ${name} --help'`), name);
      assert.equal(r.stdout, '', name);
    });
  });

  it('other bad input exits 2: missing arguments, a bad namespace, a value that is not JSON, --url with --store', async () => {
    for (const args of [
      ['get', 'orders'],
      ['get', 'bad:ns', 'k'],
      ['put', 'orders', '42', '{not json'],
      ['get', 'orders', '42', '--url', 'http://127.0.0.1:1', '--store', 'sqlite:x.db'],
      ['bench', '--read-ratio', '1.5'],
      ['bench', '--suite', 'no-such-suite'],
      ['bench', '--suite', 'memory-hit', '--ops', '10'],
    ]) {
      const r = await lockstep(args);
      assert.equal(r.code, 2, `${args.join(' ')}\n${show(r)}`);
      assert.match(r.stderr, new RegExp(`^lockstep ${args[0]}: `), args.join(' '));
    }
  });
});

describe('lockstep put/get/inspect/del on an SQLite store', () => {
  it('writes through the engine, reads it back, shows both sides, deletes, and get exits 1', async () => {
    const dir = await tempDir();
    const store = ['--store', `sqlite:${join(dir, 'kv.db')}`];

    const put = await lockstep(['put', 'orders', '42', '{"total":3}', ...store]);
    assert.equal(put.code, 0, show(put));
    assert.equal(put.stdout, 'put orders/42: version 1\n');

    const putAgain = await lockstep(['put', 'orders', '42', '{"total":4}', ...store, '--json', '--ttl', '30s']);
    assert.equal(putAgain.code, 0, show(putAgain));
    assert.deepEqual(JSON.parse(putAgain.stdout), { namespace: 'orders', key: '42', version: 2 });

    const got = await lockstep(['get', 'orders', '42', ...store]);
    assert.equal(got.code, 0, show(got));
    assert.deepEqual(JSON.parse(got.stdout), { total: 4 }, 'get prints the value as JSON');

    // LOCKSTEP_STORE is read like --store.
    const gotJson = await lockstep(['get', 'orders', '42', '--json'], { env: { LOCKSTEP_STORE: store[1]! } });
    assert.equal(gotJson.code, 0, show(gotJson));
    assert.deepEqual(JSON.parse(gotJson.stdout), { namespace: 'orders', key: '42', found: true, value: { total: 4 }, version: 2, source: 'miss' });

    const inspected = await lockstep(['inspect', 'orders', '42', ...store, '--json']);
    assert.equal(inspected.code, 0, show(inspected));
    const state = JSON.parse(inspected.stdout) as { state: string; store: { version: number; value: unknown }; cache: unknown };
    // This process's memory cache is new and empty: the key is in the store only.
    assert.equal(state.state, 'B');
    assert.deepEqual(state.store, { version: 2, value: { total: 4 } });
    assert.equal(state.cache, null);

    const deleted = await lockstep(['del', 'orders', '42', ...store]);
    assert.equal(deleted.code, 0, show(deleted));
    assert.equal(deleted.stdout, 'deleted orders/42: version 3\n');

    const gone = await lockstep(['get', 'orders', '42', ...store]);
    assert.equal(gone.code, 1, show(gone));
    assert.equal(gone.stdout, '');
    assert.match(gone.stderr, /orders\/42 not found/);
    const goneJson = await lockstep(['get', 'orders', '42', ...store, '--json']);
    assert.equal(goneJson.code, 1, show(goneJson));
    assert.equal((JSON.parse(goneJson.stdout) as { found: boolean }).found, false);
  });

  it('put - reads the value from stdin; the default store is ./lockstep.db', async () => {
    const cwd = await tempDir();
    const put = await lockstep(['put', 'docs', 'a/b', '-'], { cwd, stdin: '{"lines":["x","y"]}\n' });
    assert.equal(put.code, 0, show(put));
    assert.equal(put.stdout, 'put docs/"a/b": version 1\n');
    const got = await lockstep(['get', 'docs', 'a/b', '--store', 'sqlite:./lockstep.db'], { cwd });
    assert.equal(got.code, 0, show(got));
    assert.deepEqual(JSON.parse(got.stdout), { lines: ['x', 'y'] });
  });

  it('a store that cannot be opened exits 3', async () => {
    const r = await lockstep(['get', 'orders', '42', '--store', 'sqlite:/nonexistent-dir/lockstep/x.db']);
    assert.equal(r.code, 3, show(r));
    assert.match(r.stderr, /^lockstep get: /);
  });
});

describe('lockstep put/get/inspect/del against a running service (--url)', () => {
  const TOKEN = 'cli-commands-token';
  let url = '';
  let server: ChildProcess | undefined;

  before(async () => {
    const cwd = await tempDir();
    server = start(['serve', '--port', '0'], { cwd, env: { LOCKSTEP_TOKEN: TOKEN } });
    let out = '';
    url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`serve did not start: ${out}`)), RUN_TIMEOUT_MS);
      server!.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
        out += chunk;
        const match = /^lockstep listening on (http:\/\/\S+)/m.exec(out);
        if (match !== null) {
          clearTimeout(timer);
          resolve(match[1]!);
        }
      });
      server!.once('exit', (code) => reject(new Error(`serve exited (${code}): ${out}`)));
    });
  });

  after(async () => {
    if (server === undefined || server.exitCode !== null) return;
    const exited = new Promise((resolve) => server!.once('exit', resolve));
    server.kill('SIGTERM');
    await exited;
  });

  it('goes through the service: the write is cached there (state C), del, then get exits 1', async () => {
    const remote = ['--url', url, '--token', TOKEN];
    const put = await lockstep(['put', 'carts', 'c1', '{"items":2}', ...remote, '--json']);
    assert.equal(put.code, 0, show(put));
    const { version } = JSON.parse(put.stdout) as { version: number };
    assert.deepEqual(JSON.parse(put.stdout), { namespace: 'carts', key: 'c1', version });

    // The token may come from LOCKSTEP_TOKEN, the url from LOCKSTEP_URL.
    const got = await lockstep(['get', 'carts', 'c1', '--json'], { env: { LOCKSTEP_URL: url, LOCKSTEP_TOKEN: TOKEN } });
    assert.equal(got.code, 0, show(got));
    assert.deepEqual(JSON.parse(got.stdout), { namespace: 'carts', key: 'c1', found: true, value: { items: 2 }, version, source: 'hit' });

    const inspected = await lockstep(['inspect', 'carts', 'c1', ...remote, '--json']);
    assert.equal(inspected.code, 0, show(inspected));
    const state = JSON.parse(inspected.stdout) as { state: string; store: { version: number }; cache: { kind: string; version: number } };
    assert.equal(state.state, 'C', 'the service published the write in its cache');
    assert.equal(state.store.version, version);
    assert.deepEqual([state.cache.kind, state.cache.version], ['value', version]);
    const inspectedText = await lockstep(['inspect', 'carts', 'c1', ...remote]);
    assert.match(inspectedText.stdout, new RegExp(`^carts/c1: C, synchronized at version ${version}\\n {2}store: v${version} \\{"items":2\\}\\n {2}cache: v${version} \\{"items":2\\}\\n$`));

    const deleted = await lockstep(['del', 'carts', 'c1', ...remote, '--json']);
    assert.equal(deleted.code, 0, show(deleted));
    assert.deepEqual(JSON.parse(deleted.stdout), { namespace: 'carts', key: 'c1', version: version + 1, existed: true });

    const gone = await lockstep(['get', 'carts', 'c1', ...remote]);
    assert.equal(gone.code, 1, show(gone));
    assert.match(gone.stderr, /carts\/c1 not found/);
  });

  it('a wrong token is a service error (exit 3); a key the service rejects is bad input (exit 2)', async () => {
    const denied = await lockstep(['get', 'carts', 'c1', '--url', url, '--token', 'wrong']);
    assert.equal(denied.code, 3, show(denied));
    assert.match(denied.stderr, /^lockstep get: 401 E_UNAUTHORIZED: /);
    const tooLong = await lockstep(['put', 'carts', 'k'.repeat(600), '1', '--url', url, '--token', TOKEN]);
    assert.equal(tooLong.code, 2, show(tooLong));
    assert.match(tooLong.stderr, /400 E_KEY_TOO_LONG/);
    const unreachable = await lockstep(['get', 'carts', 'c1', '--url', 'http://127.0.0.1:9']);
    assert.equal(unreachable.code, 3, show(unreachable));
    assert.match(unreachable.stderr, /cannot reach http:\/\/127\.0\.0\.1:9/);
  });
});

describe('lockstep bench', () => {
  const ROW_KEYS = ['baseline', 'case', 'opsPerSec', 'p50Us', 'p99Us', 'ratio', 'subject', 'suite'];

  it('a mix flag alone runs the mix suite: a table of rows, then the mix in detail', async () => {
    const text = await lockstep(['bench', '--ops', '300', '--keys', '20', '--concurrency', '4']);
    assert.equal(text.code, 0, show(text));
    assert.match(text.stdout, /^suite +subject +ops\/s +p50 µs +p99 µs +ratio$/m);
    assert.match(text.stdout, /^mix +lockstep engine +[0-9,]+ /m);
    assert.match(text.stdout, /^mix +raw store \(baseline\) +[0-9,]+ .* 1\.00x$/m);
    assert.match(text.stdout, /^ {2}mix: 300 ops, 90% reads, 20 keys, concurrency 4,/m);
    assert.match(text.stdout, /^lockstep bench: 300 ops, 90% reads, 20 keys, concurrency 4/m);
    assert.match(text.stdout, /^ +ops\/s +read p50 +read p99 +write p50 +write p99 +errors$/m);
    assert.match(text.stdout, /engine \/ raw store: [0-9.]+× the ops\/s/);
    assert.equal(text.stderr, '', 'no progress bar when stderr is not a terminal');
  });

  it('--suite mix --json prints only the rows on stdout, in the shape of every suite', async () => {
    const json = await lockstep(['bench', '--suite', 'mix', '--ops', '200', '--keys', '10', '--read-ratio', '0.5', '--json']);
    assert.equal(json.code, 0, show(json));
    const rows = JSON.parse(json.stdout) as Array<Record<string, unknown>>;
    assert.deepEqual(rows.map((r) => r.subject), ['lockstep engine', 'raw store']);
    for (const row of rows) {
      assert.deepEqual(Object.keys(row).sort(), ROW_KEYS);
      assert.equal(row.suite, 'mix');
      assert.equal(row.baseline, 'raw store');
      assert.match(String(row.case), /^200 ops, 50% reads, 10 keys, concurrency 16,/);
      assert.ok((row.opsPerSec as number) > 0 && (row.ratio as number) > 0, JSON.stringify(row));
      assert.ok((row.p99Us as number) >= (row.p50Us as number), JSON.stringify(row));
    }
    assert.equal(rows[1]!.ratio, 1);
    // The table and the mix's details (read sources, errors) go to stderr with --json.
    assert.match(json.stderr, /engine reads: [0-9,]+ hit/);
  });
});

// Docs that run: every program block of the README and docs/*.md is extracted and run as written,
// so a snippet cannot rot. A program block is a ts/js fence that imports from 'lockstep' and whose
// info string does not say `fragment` (a class or a step shown out of context). It runs as an ES
// module from inside the package, so 'lockstep/…' resolves through the package's own exports (the
// build), with a fresh temporary directory as its working directory for the files it creates.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { DATABASE_URL, MYSQL_URL, needService, REDIS_URL } from '../helpers/services.js';

const root = process.cwd();
const scratch = join(root, '.scratch', 'doc-blocks');

interface Block {
  readonly file: string;
  readonly line: number;
  readonly lang: string;
  readonly code: string;
}

/** The program blocks of one markdown file, with the line each starts on. */
export function programBlocks(file: string, text: string): Block[] {
  const blocks: Block[] = [];
  const fence = /^```(\w*)([^\n]*)\n([\s\S]*?)^```/gm;
  for (const match of text.matchAll(fence)) {
    const [, lang = '', info = '', code = ''] = match;
    if (!['ts', 'typescript', 'js', 'javascript', 'mjs'].includes(lang)) continue;
    if (/\bfragment\b/.test(info)) continue;
    if (!/from 'lockstep(\/[\w-]+)?'/.test(code)) continue;
    blocks.push({ file, line: text.slice(0, match.index).split('\n').length, lang, code });
  }
  return blocks;
}

const docs = ['README.md', ...readdirSync(join(root, 'docs')).filter((name) => name.endsWith('.md')).map((name) => `docs/${name}`)];
const blocks = docs.flatMap((file) => programBlocks(file, readFileSync(join(root, file), 'utf8')));

function run(path: string, cwd: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', import.meta.resolve('tsx'), path],
      { cwd, timeout: 90_000, env: { ...process.env, DATABASE_URL, REDIS_URL, MYSQL_URL } },
      (error, stdout, stderr) => resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, output: `${stdout}${stderr}` }),
    );
  });
}

describe('program blocks of the README and docs/ run as written', { timeout: 600_000 }, () => {
  it('finds the program blocks (the extraction itself works)', () => {
    assert.ok(blocks.length >= 5, `only ${blocks.length} program blocks found`);
    assert.ok(blocks.some((block) => block.file === 'README.md'));
  });

  for (const block of blocks) {
    it(`${block.file}:${block.line}`, async (t) => {
      for (const [name, url, pattern] of [
        ['PostgreSQL', DATABASE_URL, /lockstep\/postgres|from 'pg'/],
        ['Redis', REDIS_URL, /lockstep\/(?:redis|near)|from 'redis'/],
        ['MariaDB', MYSQL_URL, /lockstep\/mysql|from 'mysql2/],
      ] as const) {
        if (!pattern.test(block.code)) continue;
        const { skip } = await needService(name, url);
        if (skip) return t.skip(skip);
      }
      mkdirSync(scratch, { recursive: true });
      const extension = block.lang.startsWith('j') || block.lang === 'mjs' ? 'mjs' : 'mts';
      const path = join(scratch, `${block.file.replace(/\W/g, '_')}_${block.line}.${extension}`);
      writeFileSync(path, block.code);
      const cwd = mkdtempSync(join(tmpdir(), 'lockstep-doc-'));
      try {
        const { code, output } = await run(path, cwd);
        assert.equal(code, 0, `${block.file}:${block.line} failed:\n${output}`);
      } finally {
        rmSync(cwd, { recursive: true, force: true });
        rmSync(path, { force: true });
      }
    });
  }
});

it('every example in examples/ is run by a test', () => {
  const tests = readFileSync(join(root, 'test/integration/examples.test.ts'), 'utf8');
  const missing = readdirSync(join(root, 'examples')).filter((name) => name.endsWith('.ts') && !tests.includes(`examples/${name}`));
  assert.deepEqual(missing, []);
});

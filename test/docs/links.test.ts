// Links that resolve: every relative link of README.md and docs/*.md points to a file of the
// repository, every `#anchor` (same page or another page's) to a heading of that page, and no
// link leaves the repository (the docs must read offline and cannot rot into dead URLs).
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { describe, it } from 'node:test';

const root = process.cwd();
const pages = ['README.md', ...readdirSync(join(root, 'docs')).filter((name) => name.endsWith('.md')).map((name) => `docs/${name}`)];

/** The text outside fenced code blocks and inline code spans. */
function prose(text: string): string {
  return text.replace(/^```[\s\S]*?^```/gm, (block) => block.replace(/[^\n]/g, ' ')).replace(/`[^`\n]*`/g, (span) => ' '.repeat(span.length));
}

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens, repeats numbered. */
export function anchors(text: string): Set<string> {
  const seen = new Map<string, number>();
  const result = new Set<string>();
  for (const line of prose(text.replace(/`/g, '')).split('\n')) {
    const match = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!match) continue;
    const base = match[1]!
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/ /g, '-');
    const count = seen.get(base) ?? 0;
    seen.set(base, count + 1);
    result.add(count === 0 ? base : `${base}-${count}`);
  }
  return result;
}

interface Link {
  readonly page: string;
  readonly line: number;
  readonly target: string;
}

export function links(page: string, text: string): Link[] {
  const found: Link[] = [];
  const masked = prose(text);
  for (const match of masked.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)|^\s*\[[^\]]+\]:\s*(\S+)/gm)) {
    const target = match[1] ?? match[2]!;
    found.push({ page, line: masked.slice(0, match.index).split('\n').length, target });
  }
  return found;
}

const texts = new Map(pages.map((page) => [page, readFileSync(join(root, page), 'utf8')]));
const all = pages.flatMap((page) => links(page, texts.get(page)!));

describe('links of the README and docs/ resolve inside the repository', () => {
  it('finds the links (the extraction itself works)', () => {
    assert.ok(all.filter((link) => link.page === 'README.md').length >= 10, 'too few links found in README.md');
    assert.ok(anchors('## The `lockstep get` command\n## A: b, c\n## A: b, c').has('a-b-c-1'));
  });

  it('no link leaves the repository', () => {
    const outside = all.filter((link) => /^[a-z][\w+.-]*:/i.test(link.target) || link.target.startsWith('//'));
    assert.deepEqual(outside.map((link) => `${link.page}:${link.line} ${link.target}`), []);
  });

  it('every relative link names an existing file, and every anchor a heading of its page', () => {
    const broken: string[] = [];
    for (const link of all) {
      if (/^[a-z][\w+.-]*:/i.test(link.target)) continue;
      const [path = '', anchor] = link.target.split('#', 2);
      const file = path === '' ? link.page : normalize(join(dirname(link.page), decodeURIComponent(path)));
      if (relative(root, join(root, file)).startsWith('..')) {
        broken.push(`${link.page}:${link.line} ${link.target}: outside the repository`);
        continue;
      }
      if (!existsSync(join(root, file))) {
        broken.push(`${link.page}:${link.line} ${link.target}: no such file`);
        continue;
      }
      if (anchor === undefined || anchor === '') continue;
      if (!file.endsWith('.md')) {
        broken.push(`${link.page}:${link.line} ${link.target}: an anchor into a file that is not markdown`);
        continue;
      }
      const text = texts.get(file) ?? readFileSync(join(root, file), 'utf8');
      if (!anchors(text).has(anchor)) broken.push(`${link.page}:${link.line} ${link.target}: no heading #${anchor} in ${file}`);
    }
    assert.deepEqual(broken, []);
  });
});

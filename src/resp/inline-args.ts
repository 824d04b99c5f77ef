// An inline command's words, split as Redis' sdssplitargs does (what a telnet or `nc` user types):
// blanks separate words; "double quotes" take \xHH, \n, \r, \t, \b, \a and \<char> escapes;
// 'single quotes' take \' only; a closing quote must end the word. Unbalanced quotes are a
// protocol error (Redis answers the same and closes). Works on latin1 text: one char per byte.

const SPACE = new Set([' ', '\t', '\n', '\r', '\v', '\f']);
const ESCAPES: Record<string, string> = { n: '\n', r: '\r', t: '\t', b: '\b', a: '\x07' };
const HEX = /^[0-9a-fA-F]{2}$/;

/** The words of `line`, or undefined when its quotes are unbalanced. */
export function splitInlineArgs(line: string): string[] | undefined {
  const words: string[] = [];
  let i = 0;
  for (;;) {
    while (i < line.length && SPACE.has(line[i]!)) i++;
    if (i >= line.length) return words;
    let word = '';
    let quote: '"' | "'" | undefined;
    for (;;) {
      if (i >= line.length) {
        if (quote !== undefined) return undefined;
        break;
      }
      const ch = line[i]!;
      if (quote === '"') {
        if (ch === '\\' && line[i + 1] === 'x' && HEX.test(line.slice(i + 2, i + 4))) {
          word += String.fromCharCode(parseInt(line.slice(i + 2, i + 4), 16));
          i += 4;
          continue;
        }
        if (ch === '\\' && i + 1 < line.length) {
          const next = line[i + 1]!;
          word += ESCAPES[next] ?? next;
          i += 2;
          continue;
        }
        if (ch === '"') {
          if (i + 1 < line.length && !SPACE.has(line[i + 1]!)) return undefined;
          i++;
          break;
        }
        word += ch;
      } else if (quote === "'") {
        if (ch === '\\' && line[i + 1] === "'") {
          word += "'";
          i += 2;
          continue;
        }
        if (ch === "'") {
          if (i + 1 < line.length && !SPACE.has(line[i + 1]!)) return undefined;
          i++;
          break;
        }
        word += ch;
      } else {
        if (SPACE.has(ch)) break;
        if (ch === '"' || ch === "'") quote = ch;
        else word += ch;
      }
      i++;
    }
    words.push(word);
  }
}

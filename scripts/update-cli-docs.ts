// Rewrites each command's --help block in docs/cli.md from the CLI itself (the test
// test/integration/cli-commands.test.ts holds the page to the current help text).
// Run: node --import tsx scripts/update-cli-docs.ts
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';

const path = 'docs/cli.md';
let page = readFileSync(path, 'utf8');
const section = /^## `lockstep ([a-z]+)`\n[\s\S]*?^```text\n([\s\S]*?)^```/gm;
page = page.replace(section, (whole: string, name: string, block: string) => {
  const help = execFileSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', name, '--help'], { encoding: 'utf8' });
  return whole.replace(`\`\`\`text\n${block}`, `\`\`\`text\n${help.trimEnd()}\n`);
});
writeFileSync(path, page);

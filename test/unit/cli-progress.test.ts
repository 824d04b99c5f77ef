// The CLI's progress bars: drawn on a terminal only, silent for short work, and lines logged while a
// bar shows still reach stderr. A PassThrough that says it is a TTY stands in for the terminal.
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { it } from 'node:test';
import { createProgress, progressWanted } from '../../src/cli/progress.js';

function terminal(isTTY: boolean): { stream: PassThrough; output: () => string } {
  const stream = Object.assign(new PassThrough(), { isTTY, columns: 100 });
  let text = '';
  stream.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
  return { stream, output: () => text };
}

it('bars are wanted on a terminal without --json only', () => {
  assert.equal(progressWanted(terminal(true).stream, false), true);
  assert.equal(progressWanted(terminal(true).stream, true), false);
  assert.equal(progressWanted(terminal(false).stream, false), false);
});

it('draws a bar with the label and counts, prints logged lines, and clears the bar on stop', async () => {
  const { stream, output } = terminal(true);
  const progress = createProgress(stream, { enabled: true, delayMs: 0 });
  progress.show('audit orders: repair', 250, 1000);
  progress.log('a line while the bar shows');
  progress.stop();
  await new Promise((resolve) => setImmediate(resolve));
  const text = output();
  assert.match(text, /audit orders: repair \[=+-+\] 25% \| 250\/1,000/);
  assert.match(text, /a line while the bar shows\n/);
  assert.match(text, /\x1b\[0J$/, 'the bar is cleared at the end');
});

it('disabled: no bar, no control characters; logged lines are plain lines', async () => {
  const { stream, output } = terminal(false);
  const progress = createProgress(stream, { enabled: false });
  progress.show('bench', 1, 2);
  progress.log('seed 1: done');
  progress.stop();
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(output(), 'seed 1: done\n');
});

it('short work stays silent: nothing is drawn before the delay', async () => {
  const { stream, output } = terminal(true);
  const progress = createProgress(stream, { enabled: true, delayMs: 60_000 });
  progress.show('audit orders: store', 10);
  progress.stop();
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(output(), '');
});

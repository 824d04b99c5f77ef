// Each suite definition (one case) runs in a fresh child process, as JMH forks per benchmark: the
// heap, the garbage and the JIT's type feedback that earlier cases leave (other caches, stores,
// drivers) would otherwise slow the later ones; the miss-fill case alone measured 1.42x and 1.60x
// at the end of a full run. The subjects of one case still share their process and rotate rounds.
// The child reports its progress lines and its rows (or its error) over the IPC channel; what it
// prints itself is passed on as progress lines, so stdout stays the parent's (--json).
//   node --import tsx bench/suite-process.ts <index in SUITES> <quick: 0|1>   (run by the parent)
import { fork } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import type { RunOptions } from './fixtures.js';
import type { Row } from './report.js';

type Message = { readonly log: string } | { readonly rows: Row[] } | { readonly error: string };

const SELF = fileURLToPath(import.meta.url);

/** Runs SUITES[index] in a child process (this file, under this process's node flags) and returns its rows. */
export function runSuiteInChild(index: number, options: RunOptions, log: (line: string) => void): Promise<Row[]> {
  return new Promise((resolve, reject) => {
    const child = fork(SELF, [String(index), options.quick ? '1' : '0'], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
    const passOn = (stream: Readable | null) => stream !== null && createInterface({ input: stream }).on('line', log);
    passOn(child.stdout);
    passOn(child.stderr);
    let outcome: Message | undefined;
    child.on('message', (message: Message) => {
      if ('log' in message) log(message.log);
      else outcome = message;
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      if (outcome !== undefined && 'rows' in outcome && code === 0) resolve(outcome.rows);
      else if (outcome !== undefined && 'error' in outcome) reject(new Error(outcome.error));
      else reject(new Error(`the suite's child process ended (${signal ?? `exit code ${code}`}) without its rows`));
    });
  });
}

async function child(args: readonly string[]): Promise<void> {
  const send = (message: Message) => new Promise<void>((done) => process.send!(message, undefined, {}, () => done()));
  const { SUITES, runSuite } = await import('./run-suite.js');
  const suite = SUITES[Number(args[0])];
  try {
    if (suite === undefined) throw new Error(`no suite at index ${args[0]}`);
    const rows = await runSuite(suite, { quick: args[1] === '1' }, (line) => void send({ log: line }));
    await send({ rows });
  } catch (error) {
    await send({ error: error instanceof Error ? error.message : String(error) });
  }
  // A client a suite failed to close must not keep the child (and so the run) alive.
  process.exit(0);
}

if (process.argv[1] === SELF && process.send !== undefined) void child(process.argv.slice(2));

// Preloaded by `npm test` (--import) into the test runner and each test file's process.
//
// With --test-force-exit and files run in parallel, Node's test runner ends a file's process with
// process.exit() as soon as its tests are done, while the last frames of its report to the runner
// may still be queued on its stdout pipe (writes to a pipe are asynchronous on Linux). Those
// verdicts are then lost without a trace: the run's summary counts fewer tests than ran, and still
// passes (a known Node bug, open upstream as of Node 20.20 and 26). Seen here: the summary said
// 1,454 tests where 1,458 ran, the tail of test/integration/memory-cache.test.ts missing. A fixture
// of 30 files × 60 tests reported 1,772–1,795 of 1,800 without this, 1,800 with it.
//
// Making the pipe blocking makes every report write complete before the next line runs, so nothing
// is queued when the process exits. Only stdout of the processes that load this file is affected
// (processes the tests start get their own execArgv and keep the default).
const handle = process.stdout?._handle;
if (handle !== undefined && handle !== null && typeof handle.setBlocking === 'function') handle.setBlocking(true);

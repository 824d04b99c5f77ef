// The bench's rows (per-operation figures, ratios, the table) live with the `lockstep bench`
// command, which prints them for every suite; re-exported here for the suites and scripts of bench/.
export * from '../src/cli/bench/rows.js';

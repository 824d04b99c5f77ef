#!/usr/bin/env bash
# The suite under load: runs the test files N times in a row while CPU-bound processes (busy loops)
# run beside them, and reports pass/fail per run. A test that only passes on an idle machine waits
# for a sleep instead of a condition; this is how we find it.
#
#   scripts/load-proof.sh                       # the whole suite, 3 runs, 2 burners
#   RUNS=5 BURNERS=4 scripts/load-proof.sh      # more runs, more load
#   scripts/load-proof.sh test/integration/dashboard.test.ts   # some files only
#   EXTRA_FLAGS='--test-reporter=spec' scripts/load-proof.sh test/unit/auditor.test.ts   # one extra flag
#
# Uses the same node --test flags as `npm test` (see TEST_FLAGS). Exit status: 0 when every run
# passed. Each run's output goes to $OUT_DIR/run-<i>.log (default test-results/load-proof/).
set -uo pipefail
cd "$(dirname "$0")/.."

RUNS="${RUNS:-3}"
BURNERS="${BURNERS:-2}"
OUT_DIR="${OUT_DIR:-test-results/load-proof}"
# Keep in step with the "test" script of package.json.
TEST_FLAGS=(--import tsx --import ./test/helpers/report-pipe-blocking.mjs --test --test-concurrency=2 --test-timeout=1800000 --test-force-exit)
export LOCKSTEP_REQUIRE_SERVICES="${LOCKSTEP_REQUIRE_SERVICES:-1}"

if [ "$#" -gt 0 ]; then
  files=("$@")
else
  mapfile -t files < <(find test -name '*.test.ts' | sort)
fi
mkdir -p "$OUT_DIR"

burners=()
stop_burners() {
  # Only the processes this script started, by their ids.
  for pid in "${burners[@]}"; do kill "$pid" 2>/dev/null; done
  for pid in "${burners[@]}"; do wait "$pid" 2>/dev/null; done
  burners=()
}
trap stop_burners EXIT INT TERM
for _ in $(seq 1 "$BURNERS"); do
  node -e 'for (;;) {}' &
  burners+=("$!")
done
echo "load-proof: $RUNS runs of ${#files[@]} test file(s) beside $BURNERS CPU burners (pids ${burners[*]}) on $(nproc) cores"

failed=0
for run in $(seq 1 "$RUNS"); do
  log="$OUT_DIR/run-$run.log"
  started=$(date +%s)
  # shellcheck disable=SC2086 # EXTRA_FLAGS is a list of flags
  node "${TEST_FLAGS[@]}" ${EXTRA_FLAGS:+"$EXTRA_FLAGS"} "${files[@]}" >"$log" 2>&1
  status=$?
  seconds=$(( $(date +%s) - started ))
  summary=$(grep -E '^(# |ℹ )(pass|fail|cancelled) ' "$log" | sed -E 's/^(# |ℹ )//' | tr '\n' ' ')
  load=$(cut -d' ' -f1-3 /proc/loadavg)
  if [ "$status" -eq 0 ]; then
    echo "run $run: PASS in ${seconds} s (${summary}load $load)"
  else
    failed=$((failed + 1))
    echo "run $run: FAIL (exit $status) in ${seconds} s (${summary}load $load); see $log"
    grep -E '^ *not ok|✖' "$log" | head -20
  fi
done
echo "load-proof: $((RUNS - failed)) of $RUNS runs passed"
[ "$failed" -eq 0 ]

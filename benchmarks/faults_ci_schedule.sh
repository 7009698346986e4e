#!/usr/bin/env bash
# How `make test`'s parallel part (`-n 2 --dist loadfile`, tests/faults/scheduling.py) spreads the CI
# sample's matrix cells: the cells with a few other test files (FILES), as make test schedules them. Prints
# the wall time with the load average before and after (the machine may be shared), the order in which tests
# finished and on which worker, each worker's cell seconds (setup + call + teardown) and the matrix's
# summary line. ORCHARD_FAULTS_CI_PIPELINE picks the matrix (default: test_matrix.py's, pose_training).
#
#   bash benchmarks/faults_ci_schedule.sh
#   FILES="tests/plugins/test_naming.py" WORKERS=2 bash benchmarks/faults_ci_schedule.sh
set -uo pipefail

workers="${WORKERS:-2}"
files="${FILES:-tests/faults/test_injection.py tests/faults/test_report.py tests/faults/test_scheduling.py tests/plugins/pose_training tests/plugins/test_naming.py}"
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
log_dir="$(mktemp -d "${TMPDIR:-/tmp}/orchard-faults-ci-schedule.XXXXXX")"
echo "CI sample's cells + $files on $workers workers (--dist loadfile), $(nproc) cores," \
     "$(git -C "$repo" rev-parse --short HEAD); logs in $log_dir"

load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
start=$SECONDS
# shellcheck disable=SC2086  # FILES is a list of paths
(cd "$repo" && ORCHARD_FAULTS_REPORT="$log_dir/matrix.md" timeout 1500 .venv/bin/python -m pytest \
   tests/faults/test_matrix.py $files -n "$workers" --dist loadfile --skip-serial -p no:cacheprovider \
   -v --durations=0 >"$log_dir/run.log" 2>&1)
status=$?
echo "$((SECONDS - start)) s wall, pytest exit $status (load average before: $load_before;" \
     "after: $(cut -d' ' -f1-3 /proc/loadavg))"
echo "finished, in order (worker, test):"
grep -E '^\[gw[0-9]+\]' "$log_dir/run.log" | awk '{print "  " $1, $(NF-1), $NF}' | head -40
echo "cell seconds per worker (setup + call + teardown):"
awk '/^\[gw[0-9]+\].*test_matrix.py::/ {worker[$NF] = $1}
     /^[0-9.]+s (setup|call|teardown) +tests\/faults\/test_matrix.py::/ {secs[$3] += $1}
     END {for (t in secs) total[worker[t]] += secs[t]; for (w in total) printf "  %s %.0f s\n", w, total[w]}' \
  "$log_dir/run.log"
grep -h "^cells:" "$log_dir/matrix.md" 2>/dev/null | sed 's/^/  /'
exit "$status"

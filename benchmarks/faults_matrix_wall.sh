#!/usr/bin/env bash
# Wall time of one pipeline's fault matrix on pytest-xdist workers (issue 14: does it fit CI's spare
# minutes?). Runs it RUNS times (default 1), prints each wall time with the load average before and after
# (the machine may be shared), the matrix's summary line, and the median.
#
#   bash benchmarks/faults_matrix_wall.sh                        # pose_training, 2 workers, once
#   PIPELINE=auto_labeling WORKERS=3 RUNS=3 bash benchmarks/faults_matrix_wall.sh
#   DIST=worksteal bash benchmarks/faults_matrix_wall.sh           # xdist's mode (default load)
#
# The first run on a machine also builds the job environments the cells use (cached afterwards).
set -uo pipefail

pipeline="${PIPELINE:-pose_training}"
workers="${WORKERS:-2}"
runs="${RUNS:-1}"
dist="${DIST:-load}"
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
log_dir="$(mktemp -d "${TMPDIR:-/tmp}/orchard-faults-matrix-wall.XXXXXX")"
echo "$pipeline's fault matrix on $workers workers (--dist $dist), $runs run(s), $(nproc) cores," \
     "$(git -C "$repo" rev-parse --short HEAD); logs in $log_dir"

times=()
failed=0
for run in $(seq 1 "$runs"); do
  load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
  start=$SECONDS
  (cd "$repo" && ORCHARD_FAULTS_REPORT="$log_dir/matrix-$run.md" timeout 1500 .venv/bin/python -m pytest \
     tests/faults/test_matrix.py -m "faults or not faults" -k "$pipeline" -n "$workers" --dist "$dist" \
     -p no:cacheprovider -q >"$log_dir/run-$run.log" 2>&1) || failed=1
  wall=$((SECONDS - start))
  times+=("$wall")
  echo "run $run: $wall s wall (load average before: $load_before; after: $(cut -d' ' -f1-3 /proc/loadavg))"
  grep -h "^cells:" "$log_dir/matrix-$run.md" 2>/dev/null | sed 's/^/  /'
done
median="$(printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}')"
echo "median: $median s"
exit "$failed"

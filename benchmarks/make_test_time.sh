#!/usr/bin/env bash
# Wall time of `make test`, end to end, as CI pays it: runs it N times (default 1), prints each wall
# time and the median. The figure behind "make test wall time" in the README.
#
#   bash benchmarks/make_test_time.sh            # once, in this checkout (venv already built: no install)
#   bash benchmarks/make_test_time.sh 3          # three times; RUNS=3 works too (make bench RUNS=3)
#   bash benchmarks/make_test_time.sh --fresh    # as on a fresh CI machine: a fresh clone of HEAD (venv
#                                                # creation + install included) and an empty cache of the
#                                                # sandbox's job environments (ORCHARD_ENV_CACHE)
#
# PYTEST_ARGS passes through to `make test`. Exits 1 if any run fails (its times are still printed).
set -euo pipefail

runs="${RUNS:-1}"
fresh=0
for arg in "$@"; do
  case "$arg" in
    --fresh) fresh=1 ;;
    ''|*[!0-9]*) echo "usage: $0 [N] [--fresh]" >&2; exit 2 ;;
    *) runs="$arg" ;;
  esac
done

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
log_dir="$(mktemp -d "${TMPDIR:-/tmp}/orchard-make-test-time.XXXXXX")"
echo "make test wall time: $runs run(s)$([[ $fresh == 1 ]] && echo ', each in a fresh clone') on $(nproc) cores," \
     "$(git -C "$repo" rev-parse --short HEAD), $(date -u +%Y-%m-%dT%H:%MZ); logs in $log_dir"

times=()
failed=0
for ((i = 1; i <= runs; i++)); do
  workdir="$repo"
  run_env=()
  if [[ $fresh == 1 ]]; then
    workdir="$log_dir/clone-$i"
    run_env=(ORCHARD_ENV_CACHE="$log_dir/env-cache-$i")
    git clone --quiet "$repo" "$workdir"
  fi
  start=$(date +%s.%N)
  if env "${run_env[@]}" make -C "$workdir" test PYTEST_ARGS="${PYTEST_ARGS:-}" >"$log_dir/run-$i.log" 2>&1
  then status=ok; else status=FAILED; failed=1; fi
  end=$(date +%s.%N)
  seconds=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')
  times+=("$seconds")
  echo "run $i: ${seconds} s ($status; $(grep -E '^=+ .*(passed|failed|error).* in ' "$log_dir/run-$i.log" | tail -n 1 | tr -d '=' | sed 's/^ *//; s/ *$//'))"
  if [[ $fresh == 1 ]]; then rm -rf "$workdir" "$log_dir/env-cache-$i"; fi
done

median=$(printf '%s\n' "${times[@]}" | sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.1f", (v[NR / 2] + v[NR / 2 + 1]) / 2 }')
echo "median: ${median} s over $runs run(s)"
exit $failed

#!/usr/bin/env bash
# The test suite in lanes, as `make test` and CI run it:
#   lane "services+ui"  tests/services tests/ui  one shared Airflow deployment (PostgreSQL, scheduler,
#                                                API server) and a browser: serial, streamed live
#   lane "unit+dags"    tests/unit tests/dags    pytest-xdist, then
#   lane "integration"  tests/integration        pytest-xdist, one worker per file (files share fixtures),
#                                                but for the KServe deploy test, which has its own lane:
#   lane "kserve"       tests/integration/test_deploy_kserve.py   after services+ui, in its process
# The services lane waits on its deployment's runs most of the time, so unit+dags and integration run beside
# it, one after the other; kserve (MLServer processes on the emulated cluster, CPU-bound) follows services+ui
# so that the two sides take about as long. Each lane prints its slowest tests and its time; "no tests collected" (pytest's exit 5)
# fails a lane, as does any failure.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
WORKERS=${TEST_WORKERS:-2}
logs=$(mktemp -d)
started=$(date +%s)

lane() {  # lane NAME PYTEST-ARGS...: runs pytest, records rc and seconds
  local name=$1; shift
  local t0; t0=$(date +%s)
  "$PY" -m pytest "$@"
  local rc=$?
  echo "$rc $(( $(date +%s) - t0 ))" > "$logs/$name.result"
  echo "lane $name: exit $rc in $(( $(date +%s) - t0 ))s"
  return 0
}

(
  lane unit+dags tests/unit tests/dags -n "$WORKERS" --durations=10 > "$logs/unit+dags.log" 2>&1
  lane integration tests/integration -n "$WORKERS" --dist loadfile --durations=15 \
    --ignore=tests/integration/test_deploy_kserve.py > "$logs/integration.log" 2>&1
) &
side=$!

lane services+ui tests/services tests/ui --durations=15
lane kserve tests/integration/test_deploy_kserve.py --durations=10
wait "$side"

for name in unit+dags integration; do
  echo "---------------- lane $name ----------------"
  cat "$logs/$name.log"
done

failed=0
echo "---------------- lanes ----------------"
for name in unit+dags integration services+ui kserve; do
  if [ ! -f "$logs/$name.result" ]; then echo "lane $name: did not finish"; failed=1; continue; fi
  read -r rc seconds < "$logs/$name.result"
  case $rc in
    0) verdict=passed ;;
    5) verdict="collected no tests: failing"; failed=1 ;;
    *) verdict="failed (pytest exit $rc)"; failed=1 ;;
  esac
  printf '%-12s %5ss  %s\n' "$name" "$seconds" "$verdict"
done
echo "all lanes: $(( $(date +%s) - started ))s"
rm -rf "$logs"
exit $failed

#!/bin/sh
# Runs every libFuzzer target in BUILD_DIR for SECONDS each, starting from
# its seed corpus (tests/fuzz/corpus/<name>/ when present). A crash fails
# the run and leaves its input in the working directory (crash-*).
set -eu
build=${1:-build-fuzz}
seconds=${2:-30}
root=$(cd "$(dirname "$0")/.." && pwd)
status=0
for f in "$build"/fuzz_*; do
  [ -x "$f" ] || continue
  name=$(basename "$f")
  work=$(mktemp -d)
  seeds="$root/tests/fuzz/corpus/${name#fuzz_}"
  [ -d "$seeds" ] || seeds=""
  echo "fuzz: $name for ${seconds}s"
  if ! "$f" -max_total_time="$seconds" -max_len=65536 -print_final_stats=1 \
      "$work" $seeds > "$work.log" 2>&1; then
    echo "fuzz: $name FAILED"; tail -50 "$work.log"; status=1
  else
    grep -E "stat::number_of_executed_units|cov:" "$work.log" | tail -2
  fi
  rm -rf "$work" "$work.log"
done
exit $status

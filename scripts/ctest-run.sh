#!/usr/bin/env bash
# What `make test` runs: ctest over the build directory, giving a failing case
# one more run (--repeat until-pass:2), then naming every case that passed only
# on its retry. Such a case is a bug, not noise: its first failure's output is
# in the log above and in <build>/Testing/ctest-output.log, and the list is
# written to <build>/Testing/retried.txt. The exit code is ctest's.
# Usage: scripts/ctest-run.sh BUILD_DIR [ctest args...]
set -uo pipefail
build=$1
shift
cd "$build" || exit 2
mkdir -p Testing
log=Testing/ctest-output.log
ctest --repeat until-pass:2 "$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
# A result line: "[n/m ]Test #k: NAME ....   Passed" or "....***Failed|Timeout|Exception".
awk '
  match($0, /Test +#[0-9]+: [^ ]+ /) {
    name = substr($0, RSTART, RLENGTH); sub(/Test +#[0-9]+: /, "", name); sub(/ $/, "", name)
    if ($0 ~ /\*\*\*(Failed|Timeout|Exception)/) failed[name] = 1
    else if ($0 ~ / Passed /) passed[name] = 1
  }
  END { for (n in failed) if (n in passed) print n }
' "$log" | sort >Testing/retried.txt
echo
if [ -s Testing/retried.txt ]; then
  echo "Passed only on retry ($(wc -l <Testing/retried.txt)): each is a bug, not noise; its first failure is in $build/$log"
  sed 's/^/  RETRIED: /' Testing/retried.txt
else
  echo "No case needed a retry."
fi
exit "$rc"

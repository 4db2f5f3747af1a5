#!/usr/bin/env bash
# The committed .clang-format is followed: every tracked C source and header is
# already formatted (clang-format --dry-run reports nothing). `make format` fixes
# what this finds. Usage: check_format.sh <repo>
set -euo pipefail
repo=$1
cd "$repo"
command -v clang-format >/dev/null || { echo "FAIL: clang-format is not installed (scripts/deps.sh test installs it)"; exit 1; }
if [ -d .git ] || git rev-parse --git-dir >/dev/null 2>&1; then
  mapfile -t files < <(git ls-files '*.c' '*.h')
else
  mapfile -t files < <(find gateway tokens sdk tests bench examples -name '*.[ch]' -not -path '*/node_modules/*')
fi
[ ${#files[@]} -gt 0 ] || { echo "FAIL: no C files found under $repo"; exit 1; }
out=$(clang-format --dry-run "${files[@]}" 2>&1 || true)
n=$(grep -c 'warning:' <<<"$out" || true)
if [ "$n" -ne 0 ]; then
  grep 'warning:' <<<"$out" | cut -d: -f1 | sort | uniq -c | sed 's/^/  /'
  echo "FAIL: $n formatting differences in ${#files[@]} files ($(clang-format --version | head -1)); run 'make format'"
  exit 1
fi
echo "ok: ${#files[@]} C files follow .clang-format"

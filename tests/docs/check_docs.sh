#!/usr/bin/env bash
# Docs stay true: every variable the binary knows is documented, and every
# variable the docs name exists. Usage: check_docs.sh <rtgw> <repo> <case>
set -euo pipefail
rtgw=$1 repo=$2 case=$3
known=$("$rtgw" serve --help | grep -oE '^\s+RTGW_[A-Z0-9_]+' | tr -d ' ' | sort -u)
[ -n "$known" ] || { echo "FAIL: rtgw serve --help lists no variables"; exit 1; }
missing_in() { # file: variables known but not mentioned
  for v in $known; do grep -q "\b$v\b" "$1" || echo "$v"; done
}
case $case in
readme_documents_every_variable)
  m=$(missing_in "$repo/README.md"); [ -z "$m" ] || { echo "FAIL: README.md does not document: $m"; exit 1; } ;;
env_example_lists_every_variable)
  m=$(missing_in "$repo/.env.example"); [ -z "$m" ] || { echo "FAIL: .env.example lacks: $m"; exit 1; } ;;
no_phantom_variables)
  # Variables the docs mention that the binary does not know (test-only ones excluded).
  mentioned=$(cat "$repo/README.md" "$repo/.env.example" "$repo"/docs/*.md 2>/dev/null |
              grep -oE '\bRTGW_[A-Z0-9_]+\*?' | grep -v '\*$' | sort -u |
              grep -vE '^RTGW_(BIN|CASE_TIMEOUT_MS)$' || true)
  bad=""; for v in $mentioned; do grep -qx "$v" <<<"$known" || bad="$bad $v"; done
  [ -z "$bad" ] || { echo "FAIL: documented but unknown to rtgw:$bad"; exit 1; } ;;
every_command_has_help)
  for c in serve keygen token; do
    "$rtgw" $c --help >/dev/null || { echo "FAIL: rtgw $c --help exited non-zero"; exit 1; }
    grep -q "rtgw $c" "$repo/README.md" || { echo "FAIL: README.md does not mention rtgw $c"; exit 1; }
  done ;;
env_example_has_no_secret)
  if grep -E '^RTGW_SIGNING_KEY(_FALLBACK)?=signkey-[a-z0-9_]+-[0-9a-f]{64}$' "$repo/.env.example"; then
    echo "FAIL: .env.example holds a real-looking key"; exit 1; fi ;;
*) echo "unknown case $case"; exit 2 ;;
esac
echo "PASS $case"

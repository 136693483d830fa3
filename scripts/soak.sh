#!/usr/bin/env bash
# Soak: the SIGKILL crash test (tests/store_crash.rs) for KILLS kills (default 200). A child
# process ingests, it is killed with SIGKILL at a random moment, and every acknowledged document
# must be there, searchable, after each kill. Prints kills, acknowledged documents and losses.
#
# Usage: scripts/soak.sh [KILLS]
set -euo pipefail
cd "$(dirname "$0")/.."
kills="${1:-200}"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
status=0
ISOVEC_CRASH_KILLS="$kills" cargo test --release --test store_crash -- --exact acknowledged_writes_survive_sigkill \
  --nocapture >"$log" 2>&1 || status=$?
# The test's last line on success: "N kills, M acknowledged documents, 0 lost, ELAPSED".
line="$(grep -E '^[0-9]+ kills, [0-9]+ acknowledged documents' "$log" | tail -n 1 || true)"
if [ "$status" = 0 ] && [ -n "$line" ]; then
  echo "soak: $line"
  exit 0
fi
# A failure names its kill ("run R: ...") and, for a loss, the lost ids.
echo "soak: FAILED (exit $status; $kills kills asked for):" >&2
grep -A 1 "panicked at" "$log" | head -n 6 >&2 || tail -n 20 "$log" >&2
loss="$(grep -oE 'run [0-9]+: acknowledged but lost: \[.*\]' "$log" | head -n 1 || true)"
if [ -n "$loss" ]; then
  kill="$(echo "$loss" | grep -oE '^run [0-9]+' | grep -oE '[0-9]+')"
  echo "soak: kill $((kill + 1)) lost $(echo "$loss" | grep -oE '"r[0-9]+-[0-9]+"' | wc -l) acknowledged documents" >&2
else
  echo "soak: no acknowledged document was reported lost before the failure" >&2
fi
exit 1

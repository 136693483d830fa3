#!/usr/bin/env bash
# Soak: the SIGKILL crash test (tests/store_crash.rs) for KILLS kills (default 200), then the
# power-cut test (tests/powercut, on a FUSE file system that forgets what was not fsynced) for
# CUTS cuts (default 300; 0 skips it; needs root, /dev/fuse and the fuse3 package).
# A child process ingests; it is killed (and, for a cut, everything not fsynced is thrown away)
# at a random moment, and every acknowledged document must be there, whole and searchable,
# after each. Prints kills or cuts, acknowledged documents and losses.
#
# Usage: scripts/soak.sh [KILLS] [CUTS]
set -euo pipefail
cd "$(dirname "$0")/.."
kills="${1:-200}"
cuts="${2:-300}"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
status=0
ISOVEC_CRASH_KILLS="$kills" cargo test --release --test store_crash -- --exact acknowledged_writes_survive_sigkill \
  --nocapture >"$log" 2>&1 || status=$?
# The test's last line on success: "N kills, M acknowledged documents, 0 lost, ELAPSED".
line="$(grep -E '^[0-9]+ kills, [0-9]+ acknowledged documents' "$log" | tail -n 1 || true)"
if [ "$status" = 0 ] && [ -n "$line" ]; then
  echo "soak: $line"
else
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
fi
[ "$cuts" = 0 ] && exit 0
if ! dpkg -s fuse3 >/dev/null 2>&1; then
  apt-get update -qq && apt-get install -y -qq fuse3
fi
status=0
ISOVEC_REQUIRE_DATA=1 ISOVEC_POWERCUT_CUTS="$cuts" cargo test --release -p isovec-powercut --test powercut -- \
  --exact acknowledged_writes_survive_power_cuts --nocapture >"$log" 2>&1 || status=$?
# The test's summary: "N cuts, M acknowledged writes (...); L lost, D damaged, ... ELAPSED".
line="$(grep -E '^[0-9]+ cuts, [0-9]+ acknowledged writes' "$log" | tail -n 1 || true)"
if [ "$status" = 0 ] && [ -n "$line" ]; then
  echo "soak: $line"
  exit 0
fi
# A failure prints each faulty cut ("run R: L lost, ...") and the summary.
echo "soak: power cuts FAILED (exit $status; $cuts cuts asked for):" >&2
grep -E '^run [0-9]+: ' "$log" | head -n 5 >&2 || true
[ -n "$line" ] && echo "soak: $line" >&2
grep -A 2 "panicked at" "$log" | head -n 6 >&2 || tail -n 20 "$log" >&2
kept="$(mktemp /tmp/soak-powercut-XXXXXX.log)"
cp "$log" "$kept"
echo "soak: the whole log (with the run's seed, ISOVEC_POWERCUT_SEED): $kept" >&2
exit 1

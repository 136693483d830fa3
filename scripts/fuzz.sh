#!/usr/bin/env bash
# Fuzzes isovec's parsers of user input and stored data (the cargo-fuzz targets in fuzz/) for a
# bounded time each, then prints each target's run time, executions and findings.
#
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]   (default 60 s each, every target)
# Needs the nightly toolchain (`rustup toolchain install nightly`) and `cargo install cargo-fuzz`.
# A target keeps running for its whole time after a crash (libFuzzer's fork mode); what it finds
# is saved in fuzz/artifacts/TARGET/ (replay one with `cargo +nightly fuzz run TARGET FILE`).
# The corpus grows in fuzz/corpus/TARGET/, seeded from fuzz/make_seeds.py.
# Exit status 1 if any target found a crash, an out-of-memory or a timeout.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds="${1:-60}"
shift || true
# The fuzz crate has its own target folder; a CARGO_TARGET_DIR meant for the workspace would mix
# nightly sanitizer builds into it.
unset CARGO_TARGET_DIR
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo +nightly fuzz list)
fi
python3 make_seeds.py
# The readers that take a path get their input through files: keep those in memory (tmpfs) when
# the machine has one, and in one folder removed at the end.
scratch="$(mktemp -d /dev/shm/isovec-fuzz.XXXXXX 2>/dev/null || mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
export TMPDIR="$scratch"
cargo +nightly fuzz build
summary=()
details=()
found=0
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t" "artifacts/$t"
  before="$(ls "artifacts/$t" | sort)"
  log="artifacts/$t.log"
  start=$(date +%s)
  cargo +nightly fuzz run "$t" "corpus/$t" "seeds/$t" -- \
    -max_total_time="$seconds" -fork=1 -ignore_crashes=1 -ignore_ooms=1 -ignore_timeouts=1 \
    -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 >"$log" 2>&1 || true
  took=$(( $(date +%s) - start ))
  # Fork mode reports "#EXECS: cov: ... exec/s ..." lines; a plain run ends with "Done EXECS runs".
  execs="$(grep -oE '^#[0-9]+:' "$log" | tail -n 1 | tr -d '#:')"
  [ -n "$execs" ] || execs="$(grep -oE 'Done [0-9]+ runs' "$log" | grep -oE '[0-9]+' | tail -n 1)"
  new="$(comm -13 <(echo "$before") <(ls "artifacts/$t" | sort) | grep -v '^$' || true)"
  if [ -n "$new" ]; then
    found=1
    # Counts by kind (crash-, oom-, timeout-), and where the first of each kind stops: replayed
    # once, since fork mode does not keep the inner processes' reports.
    what="$(echo "$new" | sed -E 's/-.*//' | sort | uniq -c | awk '{printf "%s%s %s", (NR > 1 ? ", " : ""), $1, $2}') in artifacts/$t/"
    for kind in $(echo "$new" | sed -E 's/-.*//' | sort -u); do
      first="artifacts/$t/$(echo "$new" | grep "^$kind-" | head -n 1)"
      where="$("target/x86_64-unknown-linux-gnu/release/$t" -rss_limit_mb=2048 -timeout=10 "$first" 2>&1 \
        | grep -E 'panicked at|ERROR: libFuzzer|ERROR: AddressSanitizer|^\s+#[0-9]+ 0x[0-9a-f]+ in isovec::' \
        | head -n 3 | sed -E 's/^ +//' | tr '\n' ' ' || true)"
      details+=("$t $kind ($first): $where")
    done
  else
    what="nothing"
  fi
  summary+=("$(printf '%-16s %5ss %12s execs  %s' "$t" "$took" "${execs:-?}" "$what")")
done
echo
echo "target           time        executions  findings"
printf '%s\n' "${summary[@]}"
if [ "$found" = 1 ]; then
  echo
  echo "where the first finding of each kind stops:"
  printf '  %s\n' "${details[@]}"
  exit 1
fi

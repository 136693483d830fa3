#!/usr/bin/env bash
# The extension in Debian's sqlite3 shell: index the fixture corpus from a table with
# isovec_upsert, search with isovec_search joined with that table (in the indexing session and in a
# fresh one), and check that the ids, their order and the scores equal `isovec search --json` of
# the CLI on the same store; the same for a hybrid search (dense + BM25, fused).
#
# Usage: plugin/tests/sqlite3_shell.sh [release|debug]   (default release; both binaries must be
# built: `cargo build --release --workspace`). Skips (exit 0) without the default model, or fails
# (exit 1) then under ISOVEC_REQUIRE_DATA=1.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
profile="${1:-release}"
target="${CARGO_TARGET_DIR:-$root/target}"
ext="$target/$profile/libisovec_sqlite.so"
isovec="$target/$profile/isovec"
model="${ISOVEC_MODEL:-${ISOVEC_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/isovec}/models/all-MiniLM-L6-v2}"

command -v sqlite3 >/dev/null || { echo "sqlite3_shell.sh: FAIL: no sqlite3 (apt-get install -y sqlite3)" >&2; exit 1; }
for f in "$ext" "$isovec"; do
  [ -f "$f" ] || { echo "sqlite3_shell.sh: FAIL: $f is missing; build with cargo build --$profile --workspace" >&2; exit 1; }
done
if [ ! -f "$model/model.safetensors" ]; then
  # The same rule as the Rust tests (src/test_support/require.rs): a failure under ISOVEC_REQUIRE_DATA=1.
  if [ "${ISOVEC_REQUIRE_DATA:-}" = 1 ]; then
    echo "sqlite3_shell.sh: FAIL: the default model is not installed at $model (run isovec model fetch, or set ISOVEC_MODEL); ISOVEC_REQUIRE_DATA=1 makes this a failure instead of a skip" >&2
    exit 1
  fi
  echo "sqlite3_shell.sh: skipped: the default model is not installed at $model (run isovec model fetch; ISOVEC_REQUIRE_DATA=1 makes this a failure)" >&2
  exit 0
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
query="how do vaccines work"
k=7
filter="topic IN (health, space, ocean) AND year>=2000"
corpus="$root/fixtures/corpus.jsonl"

# The search, printed as "id|score rounded to 4 decimals", best first.
search_sql="SELECT s.id || '|' || printf('%.4f', s.score)
  FROM isovec_search('st', 'docs', '$query', $k, '$filter') s JOIN docs d ON d.id = s.id
  ORDER BY s.score DESC;"

hybrid_sql="SELECT s.id || '|' || printf('%.4f', s.score)
  FROM isovec_search('st', 'docs', '$query', $k, '$filter', 'hybrid') s JOIN docs d ON d.id = s.id
  ORDER BY s.score DESC;"

# Session 1: load the corpus into a table (JSON lines → a JSON array), index it, search.
sqlite3 -bail app.db >session1.txt <<SQL
.load $ext
CREATE TABLE docs(id TEXT PRIMARY KEY, body TEXT NOT NULL, meta TEXT);
INSERT INTO docs
  SELECT json_extract(value, '\$.id'), json_extract(value, '\$.text'), json_extract(value, '\$.metadata')
  FROM json_each('[' || replace(trim(readfile('$corpus'), char(10)), char(10), ',') || ']');
SELECT 'indexed ' || sum(isovec_upsert('st', 'docs', id, body, meta)) FROM docs;
$search_sql
SELECT 'closed ' || isovec_close('st');
SQL
# Session 2: a new process opens the store from disk.
sqlite3 -bail app.db >session2.txt <<SQL
.load $ext
$search_sql
SQL
# Session 3: a hybrid search.
sqlite3 -bail app.db >session3.txt <<SQL
.load $ext
$hybrid_sql
SQL
# The library, through the CLI.
"$isovec" search --store st --collection docs -k "$k" --filter "$filter" --json "$query" >cli.jsonl
"$isovec" search --store st --collection docs -k "$k" --filter "$filter" --mode hybrid --json "$query" >cli-hybrid.jsonl

head -n 1 session1.txt
grep -q '^indexed 250$' session1.txt || { echo "FAIL: expected 250 indexed documents" >&2; cat session1.txt >&2; exit 1; }
grep -q '^closed 1$' session1.txt || { echo "FAIL: isovec_close did not close the store" >&2; exit 1; }
grep '|' session1.txt >sql1.txt
grep '|' session2.txt >sql2.txt
# serde_json writes keys in order (id, metadata, score, text); take id and score.
for f in cli cli-hybrid; do
  sed -E 's/.*"id":"([^"]*)".*"score":([-0-9.eE]+).*/\1 \2/' $f.jsonl | awk '{printf "%s|%.4f\n", $1, $2}' >$f.txt
done
grep '|' session3.txt >sql3.txt
echo "isovec_search (session 1):"; cat sql1.txt
if [ "$(wc -l <cli.txt)" -ne "$k" ]; then echo "FAIL: the CLI returned $(wc -l <cli.txt) hits, not $k" >&2; exit 1; fi
diff sql1.txt cli.txt >/dev/null || { echo "FAIL: isovec_search differs from isovec search:" >&2; diff sql1.txt cli.txt >&2; exit 1; }
diff sql2.txt cli.txt >/dev/null || { echo "FAIL: a new session's isovec_search differs from isovec search:" >&2; diff sql2.txt cli.txt >&2; exit 1; }
if [ "$(wc -l <cli-hybrid.txt)" -ne "$k" ]; then echo "FAIL: the CLI's hybrid search returned $(wc -l <cli-hybrid.txt) hits, not $k" >&2; exit 1; fi
diff sql3.txt cli-hybrid.txt >/dev/null || { echo "FAIL: a hybrid isovec_search differs from isovec search --mode hybrid:" >&2; diff sql3.txt cli-hybrid.txt >&2; exit 1; }
if diff -q sql3.txt sql1.txt >/dev/null; then echo "FAIL: the hybrid search returned the dense ranking and scores" >&2; exit 1; fi
echo "isovec_search hybrid:"; cat sql3.txt
echo "sqlite3_shell.sh: OK ($k ids, order and scores equal to the CLI's, dense and hybrid)"

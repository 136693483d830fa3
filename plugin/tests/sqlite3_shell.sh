#!/usr/bin/env bash
# The extension in Debian's sqlite3 shell: index the fixture corpus from a table with
# isovec_upsert, search with isovec_search joined with that table (in the indexing session and in a
# fresh one), and check that the ids, their order and the scores equal `isovec search --json` of
# the CLI on the same store; the same for a hybrid search (dense + BM25, fused). Then the bulk form
# isovec_upsert_all: the store it fills searches like the one `isovec index` fills from the corpus
# file, every row is durable when the statement returns (the shell is killed with SIGKILL right
# after it), and a bad row in the middle keeps the batches before it, with an error that says so.
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

# The bulk form. Its report goes into a table of app.db (SQLite's own durable write), then the
# shell kills itself with SIGKILL: nothing of isovec's runs after the statement (no close, no flush).
set +e
sqlite3 -bail app.db >bulk.txt 2>&1 <<SQL
.load $ext
CREATE TABLE bulk_report AS
  SELECT isovec_upsert_all('bulk', 'docs', id, body, meta) AS report FROM (SELECT * FROM docs ORDER BY rowid);
.shell kill -9 \$PPID
SELECT 'not killed';
SQL
status=$?
set -e
if [ "$status" -ne 137 ] || grep -q 'not killed' bulk.txt; then echo "FAIL: the bulk session was not killed (exit $status):" >&2; cat bulk.txt >&2; exit 1; fi
"$isovec" index --store cli-st --collection docs "$corpus" 2>index.txt
sqlite3 -bail app.db >bulk2.txt <<SQL
.load $ext
SELECT 'report ' || json_extract(report, '\$.rows') || ' ' || json_extract(report, '\$.inserted') || ' '
  || json_extract(report, '\$.replaced') || ' ' || json_extract(report, '\$.batches') FROM bulk_report;
SELECT 'documents ' || json_extract(isovec_collection('bulk', 'docs'), '\$.documents');
SQL
grep -q '^report 250 250 0 1$' bulk2.txt \
  || { echo "FAIL: unexpected isovec_upsert_all report:" >&2; cat bulk2.txt >&2; exit 1; }
grep -q '^documents 250$' bulk2.txt || { echo "FAIL: after SIGKILL the bulk store does not hold the 250 documents:" >&2; cat bulk2.txt >&2; exit 1; }
for st in bulk cli-st; do
  "$isovec" search --store $st --collection docs -k "$k" --filter "$filter" --json "$query" \
    | sed -E 's/.*"id":"([^"]*)".*"score":([-0-9.eE]+).*/\1 \2/' | awk '{printf "%s|%.4f\n", $1, $2}' >search-$st.txt
done
diff search-bulk.txt search-cli-st.txt >/dev/null || { echo "FAIL: the store isovec_upsert_all filled searches differently from the one isovec index filled:" >&2; diff search-bulk.txt search-cli-st.txt >&2; exit 1; }
diff search-bulk.txt cli.txt >/dev/null || { echo "FAIL: isovec_upsert_all and isovec_upsert filled different stores:" >&2; diff search-bulk.txt cli.txt >&2; exit 1; }

# A NULL text at row 150, batches of 64: rows 1–128 (two batches) are kept, 129–150 and after are not.
if sqlite3 -bail app.db >bad.txt 2>bad.err <<SQL
.load $ext
SELECT isovec_upsert_all('bad', 'docs', id, CASE WHEN rowid = 150 THEN NULL ELSE body END, meta, 64)
  FROM (SELECT rowid, * FROM docs ORDER BY rowid);
SQL
then echo "FAIL: a NULL text did not stop isovec_upsert_all" >&2; exit 1; fi
grep -q 'the text is NULL' bad.err && grep -q 'stopped at row 150: rows 1–128 were written (2 durable batches) and are kept; rows 129–150 and any after were not written' bad.err \
  || { echo "FAIL: unexpected error from isovec_upsert_all:" >&2; cat bad.err >&2; exit 1; }
kept="$(sqlite3 app.db ".load $ext" "SELECT json_extract(isovec_collection('bad', 'docs'), '\$.documents');")"
[ "$kept" = 128 ] || { echo "FAIL: after the bad row the store holds $kept documents, not 128" >&2; exit 1; }
echo "isovec_upsert_all: 250 rows durable at the statement's end, searches equal to isovec index's; a bad row at 150 kept rows 1–128"
echo "sqlite3_shell.sh: OK ($k ids, order and scores equal to the CLI's, dense and hybrid; bulk upsert durable and equal to isovec index)"

#!/usr/bin/env bash
# isovec against its peers (ONNX Runtime, hnswlib; ../shared/peers), one after the other on the same
# inputs in one run, median of N runs, printed as ONE table: measure | isovec | peer | ratio | target,
# with the date, the machine and every command it ran.
#
# Usage: scripts/bench-peers.sh [--quick] [--runs N] [--only LIST] [--work DIR] [--no-wait]
#   --quick     small inputs, 1 run (a minute or two): proves the script works; not a claim
#   --runs N    runs per measure, the median is reported (default 3; --quick 1)
#   --only LIST comma list of: encode (STS-B, SciFact), single (one text query), ann (HNSW build,
#               queries/s at recall 0.985, reopen), sql (isovec_upsert_all vs isovec index)
#   --work DIR  where inputs, vectors and logs go (default target/bench-peers; vectors are reused)
#   --no-wait   do not wait for a quiet machine (the peers' loadmon.py) before each section
# Needs: `cargo build --release --workspace`, the default model (`isovec model fetch`), the peers
# (`../shared/peers/setup.sh`), sqlite3 for `sql`, and the data ($ISOVEC_DATA, default ../shared/data).
#
# The ratio is always "times faster than the peer": peer time / isovec time, or isovec rate / peer
# rate (> 1: isovec ahead). The target column is issue 17's "done when" in the same terms (a p50
# latency of at most 0.8× ORT's is a ratio of at least 1.25).
#
# What it expects of isovec's commands (the parse_* functions below are the only places that read
# their output; adapt them when the output changes):
#   isovec bench encode  — a Markdown table `| corpus | batch | items | tokens/item | items/s | ...`
#                          with rows "STS-B test sentences" and "SciFact abstracts";
#   isovec bench hybrid  — a row `| dense text query, encode + search, p50 / p90 / p99 | A / B / C ms |`;
#   isovec bench ann     — lines `build (upsert, all vectors)  X s`, `open from snapshot  X s`, and the
#                          ef table: lines of `ef recall@10 qps(1t) qps(2t)`, numbers only;
#   isovec index / isovec embed / sqlite3 with the extension — timed as whole processes.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
quick=0
runs=""
only="encode,single,ann,sql"
work="$root/target/bench-peers"
wait_quiet=1
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1 ;;
    --runs) runs="$2"; shift ;;
    --only) only="$2"; shift ;;
    --work) work="$2"; shift ;;
    --no-wait) wait_quiet=0 ;;
    -h|--help) sed -n '2,27p' "$0"; exit 0 ;;
    *) echo "bench-peers.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
[ -n "$runs" ] || runs=$([ $quick = 1 ] && echo 1 || echo 3)
[ $quick = 1 ] && wait_quiet=0

target="${CARGO_TARGET_DIR:-$root/target}"
isovec="$target/release/isovec"
ext="$target/release/libisovec_sqlite.so"
data="$(cd "${ISOVEC_DATA:-$root/../shared/data}" 2>/dev/null && pwd)" || { echo "bench-peers.sh: no data folder; set ISOVEC_DATA" >&2; exit 1; }
peers="$(cd "${PEERS_SRC:-$root/../shared/peers}" 2>/dev/null && pwd)" || { echo "bench-peers.sh: no peers folder; set PEERS_SRC to ../shared/peers" >&2; exit 1; }
export PEERS_DIR="${PEERS_DIR:-$HOME/.cache/isovec-peers}"
py="$PEERS_DIR/venv/bin/python"
export ISOVEC_DATA="$data"
[ -x "$isovec" ] || { echo "bench-peers.sh: $isovec is missing; run cargo build --release --workspace" >&2; exit 1; }
[ $wait_quiet = 1 ] || export PEERS_NO_WAIT=1
has() { case ",$only," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }
if has encode || has single || has ann || [ $wait_quiet = 1 ]; then
  [ -x "$py" ] || { echo "bench-peers.sh: no peer venv at $PEERS_DIR; run $peers/setup.sh" >&2; exit 1; }
fi

# Sizes: the issue's, or small ones for --quick.
if [ $quick = 1 ]; then
  n_sci=100; n_base=10000; n_q=100; n_sql_sci=200
else
  # SciFact has 5,183 abstracts: the SQL measure takes them all.
  n_sci=1000; n_base=100000; n_q=1000; n_sql_sci=100000
fi
mkdir -p "$work"
log="$work/commands.txt"
results="$work/results.tsv"
: >"$log"
: >"$results"
started="$(date -u '+%Y-%m-%d %H:%M:%S UTC')"
load_start="$(cut -d' ' -f1-3 /proc/loadavg)"

# ---------------------------------------------------------------- helpers
# Runs a command, logging it; its output goes to the file $1.
run_to() {
  local out="$1"; shift
  echo "$*" >>"$log"
  "$@" >"$out" 2>"$out.err" || { echo "bench-peers.sh: FAILED: $*" >&2; tail -20 "$out.err" >&2; exit 1; }
}
# Seconds a command takes (whole process), logging it.
timed() {
  echo "$*" >>"$log"
  local t0 t1
  t0=$(date +%s.%N)
  "$@" >"$work/last.out" 2>"$work/last.err" || { echo "bench-peers.sh: FAILED: $*" >&2; tail -20 "$work/last.err" >&2; exit 1; }
  t1=$(date +%s.%N)
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f\n", b - a }'
}
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
# Fails unless $1 (a figure read by a parse_* function) is a number.
need() {
  [[ "$1" =~ ^[0-9]+([.][0-9]+)?$ ]] || { echo "bench-peers.sh: could not read $2 from $3 (got '$1'); adapt the parse_* functions to the output" >&2; exit 1; }
  echo "$1"
}
quiet() {
  [ $wait_quiet = 1 ] || return 0
  "$py" -c "import sys; sys.path.insert(0, '$peers'); from loadmon import wait_quiet; wait_quiet(log=lambda m: print(m, file=sys.stderr))"
}
# One row of the table: measure, isovec figure, peer figure, ratio (times faster), target.
row() { printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" >>"$results"; }
ratio_rate() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f×", a / b }'; }
ratio_time() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f×", b / a }'; }

# ---------------------------------------------------------------- parsing isovec's output
# items/s of corpus $2 (a row label of `isovec bench encode`'s table) at batch 32, from file $1.
parse_encode() { awk -F'|' -v c="$2" '{ gsub(/^ +| +$/, "", $2); gsub(/ /, "", $3) } $2 == c && $3 == "32" { gsub(/ /, "", $6); print $6 }' "$1"; }
# "p50 p90 p99" (ms) of the dense text query (encode + search) of `isovec bench hybrid`, file $1.
parse_hybrid_dense() { sed -nE 's/^\| dense text query, encode \+ search, p50 \/ p90 \/ p99 \| ([0-9.]+) \/ ([0-9.]+) \/ ([0-9.]+) ms \|$/\1 \2 \3/p' "$1"; }
# Build seconds of `isovec bench ann`, file $1.
parse_ann_build() { sed -nE 's/^build \(upsert, all vectors\) +([0-9.]+) s$/\1/p' "$1"; }
# Reopen-from-snapshot seconds of `isovec bench ann`, file $1.
parse_ann_reopen() { sed -nE 's/^open from snapshot +([0-9.]+) s$/\1/p' "$1"; }
# "ef recall qps_1t" of the smallest ef with recall@10 >= $2 in `isovec bench ann`'s ef table, file $1.
parse_ann_at_recall() { awk -v r="$2" 'NF == 4 && $1 ~ /^[0-9]+$/ && $2 ~ /^[0-9.]+$/ && $2 >= r { print $1, $2, $3; exit }' "$1"; }

# ---------------------------------------------------------------- inputs
echo "preparing inputs in $work" >&2
python3 - "$data" "$work" "$n_base" "$n_q" "$n_sql_sci" <<'PY'
import gzip, json, os, sys
data, work, n_base, n_q, n_sql = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
def write(path, lines):
    if not os.path.exists(path):
        with open(path, "w", encoding="utf-8") as f:
            f.writelines(l + "\n" for l in lines)
with gzip.open(f"{data}/ann/sentences.txt.gz", "rt", encoding="utf-8") as f:
    write(f"{work}/base-{n_base}.txt", [l.rstrip("\n") for _, l in zip(range(n_base), f)])
with open(f"{data}/ann/queries.txt", encoding="utf-8") as f:
    write(f"{work}/queries-{n_q}.txt", [l.rstrip("\n") for l in f if l.strip()][:n_q])
docs = []
with gzip.open(f"{data}/retrieval/scifact/corpus.jsonl.gz", "rt", encoding="utf-8") as f:
    for l in f:
        if len(docs) >= n_sql:
            break
        d = json.loads(l)
        docs.append(json.dumps({"id": d["_id"], "text": (d["title"] + " " + d["text"]).strip()}))
write(f"{work}/scifact-{n_sql}.jsonl", docs)
PY

# The ANN vectors (default model, mean pooling, L2, 128 tokens, as the data README says) and the
# exact neighbours: the data's gt_top100.tsv for the full set, numpy's for a --quick subset.
vectors() {
  local base="$work/base-$n_base.npy" queries="$work/queries-$n_q.npy"
  [ -f "$base" ] || run_to "$work/embed-base.out" "$isovec" embed --max-length 128 --input "$work/base-$n_base.txt" --out "$base"
  [ -f "$queries" ] || run_to "$work/embed-queries.out" "$isovec" embed --max-length 128 --input "$work/queries-$n_q.txt" --out "$queries"
  if [ ! -f "$work/gt-$n_base-$n_q.npy" ]; then
    "$py" - "$data" "$work" "$n_base" "$n_q" <<'PY'
import sys
import numpy as np
data, work, n_base, n_q = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
if n_base == 100000 and n_q == 1000:
    gt = np.loadtxt(f"{data}/ann/gt_top100.tsv", dtype=np.int32)
else:
    b, q = np.load(f"{work}/base-{n_base}.npy"), np.load(f"{work}/queries-{n_q}.npy")
    gt = np.argsort(-(q @ b.T), axis=1)[:, :100].astype(np.int32)
np.save(f"{work}/gt-{n_base}-{n_q}.npy", gt)
np.savetxt(f"{work}/gt-{n_base}-{n_q}.tsv", gt, fmt="%d", delimiter="\t")
PY
  fi
}

# ---------------------------------------------------------------- ONNX Runtime (fused graph)
# Prints JSON: {"stsb": sentences/s, "scifact": docs/s, "p50": ms, "p90": ms, "p99": ms}, medians
# of $runs; the peers' own measuring code (ort_bench.throughput and single_latency).
ort() {
  local what="$1"
  echo "$py <ort_bench.throughput/single_latency> $what runs=$runs n_sci=$n_sci n_q=$n_q (fused graph, 2 threads)" >>"$log"
  "$py" - "$peers" "$what" "$runs" "$n_sci" "$work/queries-$n_q.txt" 2>"$work/ort.err" <<'PY'
import io, contextlib, json, statistics, sys
peers, what, runs, n_sci, qfile = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
sys.path.insert(0, peers)
import ort_bench as ob
from ort_encoder import FUSED_ONNX, OrtEncoder
enc = OrtEncoder(FUSED_ONNX, max_length=256, threads=2)
out = {}
with contextlib.redirect_stdout(sys.stderr):
    if "encode" in what:
        out["stsb"] = ob.throughput(enc, ob.load_stsb_interleaved(), [32], runs, 1, "stsb")[0]["sent_per_s"]
        out["scifact"] = ob.throughput(enc, ob.load_scifact(n_sci), [32], runs, 1, "scifact")[0]["sent_per_s"]
    if "single" in what:
        queries = [l.rstrip("\n") for l in open(qfile, encoding="utf-8")]
        rows = [ob.single_latency(enc, queries, queries[:50], 128) for _ in range(runs)]
        for p in ("p50", "p90", "p99"):
            out[p] = statistics.median(r[p + "_ms"] for r in rows)
print(json.dumps(out))
PY
}
json_get() { "$py" -c "import json, sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$1" "$2"; }

# ---------------------------------------------------------------- encode
if has encode; then
  echo "encode: isovec bench encode, then ONNX Runtime" >&2
  quiet
  run_to "$work/bench-encode.out" "$isovec" bench encode --data "$data" --batch-sizes 32 --runs "$runs" --docs "$n_sci" --doc-max-length 256
  i_sts=$(need "$(parse_encode "$work/bench-encode.out" "STS-B test sentences")" "STS-B sentences/s" "$work/bench-encode.out")
  i_sci=$(need "$(parse_encode "$work/bench-encode.out" "SciFact abstracts")" "SciFact docs/s" "$work/bench-encode.out")
  quiet
  o=$(ort encode)
  o_sts=$(json_get "$o" stsb); o_sci=$(json_get "$o" scifact)
  row "SciFact $n_sci abstracts, 256 tokens, batch 32 (docs/s)" "$i_sci" "$(printf '%.1f' "$o_sci") (ORT)" "$(ratio_rate "$i_sci" "$o_sci")" "≥ 1.25×"
  row "STS-B test, 2,758 sentences, batch 32 (sentences/s)" "$i_sts" "$(printf '%.1f' "$o_sts") (ORT)" "$(ratio_rate "$i_sts" "$o_sts")" "≥ 1.5×"
fi

# ---------------------------------------------------------------- single text query
if has single || has ann; then vectors; fi
if has single; then
  echo "single: isovec bench hybrid (dense: encode + search), then ONNX Runtime (encode only)" >&2
  p50s=(); p90s=(); p99s=()
  for r in $(seq "$runs"); do
    quiet
    out="$work/bench-hybrid-$r.out"
    run_to "$out" "$isovec" bench hybrid --max-length 128 --docs "$work/base-$n_base.txt" --base "$work/base-$n_base.npy" --queries "$work/queries-$n_q.txt"
    read -r a b c < <(parse_hybrid_dense "$out") || true
    p50s+=("$(need "${a:-}" "the dense p50" "$out")"); p90s+=("$(need "${b:-}" "the dense p90" "$out")"); p99s+=("$(need "${c:-}" "the dense p99" "$out")")
  done
  quiet
  o=$(ort single)
  i=$(median "${p50s[@]}"); peer=$(json_get "$o" p50)
  row "one text query, $n_q queries, p50 (ms; isovec encode + search, ORT encode only)" "$i" "$(printf '%.2f' "$peer") (ORT)" "$(ratio_time "$i" "$peer")" "≥ 1.25× (p50 ≤ 0.8× ORT's)"
  i=$(median "${p90s[@]}"); peer=$(json_get "$o" p90)
  row "one text query, p90 (ms)" "$i" "$(printf '%.2f' "$peer") (ORT)" "$(ratio_time "$i" "$peer")" ""
  i=$(median "${p99s[@]}"); peer=$(json_get "$o" p99)
  row "one text query, p99 (ms)" "$i" "$(printf '%.2f' "$peer") (ORT)" "$(ratio_time "$i" "$peer")" ""
fi

# ---------------------------------------------------------------- HNSW
if has ann; then
  echo "ann: isovec bench ann (default parameters), then hnswlib (M 16, ef_construction 200, 2 threads)" >&2
  efs="16,24,32,48,64,96,128,192,256"
  builds=(); reopens=(); qpss=(); at=""
  for r in $(seq "$runs"); do
    quiet
    out="$work/bench-ann-$r.out"
    run_to "$out" "$isovec" bench ann --base "$work/base-$n_base.npy" --queries "$work/queries-$n_q.npy" --gt "$work/gt-$n_base-$n_q.tsv" --ef "$efs"
    builds+=("$(need "$(parse_ann_build "$out")" "the build time" "$out")")
    reopens+=("$(need "$(parse_ann_reopen "$out")" "the reopen time" "$out")")
    read -r ef rec qps < <(parse_ann_at_recall "$out" 0.985) || { echo "bench-peers.sh: isovec reached no recall@10 of 0.985 with ef up to ${efs##*,} ($out)" >&2; exit 1; }
    qpss+=("$qps"); at="ef $ef, recall $rec"
  done
  h_builds=(); h_qpss=(); h_at=""
  for r in $(seq "$runs"); do
    rm -f "$work/hnswlib-$r.jsonl"
    run_to "$work/hnswlib-$r.out" "$py" "$peers/ann_bench.py" run --base "$work/base-$n_base.npy" --queries "$work/queries-$n_q.npy" \
      --gt "$work/gt-$n_base-$n_q.npy" --libs hnswlib --M 16 --efc 200 --ef "$efs" --build-threads 2 --repeats 3 --json-out "$work/hnswlib-$r.jsonl"
    read -r b ef rec qps < <("$py" -c "
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
ok = [r for r in rows if r['recall10'] >= 0.985] or [max(rows, key=lambda r: r['recall10'])]
r = ok[0]
print(rows[0]['build_s'], r['ef'], r['recall10'], r['qps_1t'])" "$work/hnswlib-$r.jsonl")
    h_builds+=("$b"); h_qpss+=("$qps"); h_at="ef $ef, recall $rec"
  done
  i=$(median "${builds[@]}"); h=$(median "${h_builds[@]}")
  row "HNSW build, $n_base × 384, 2 threads (s; isovec defaults, hnswlib M 16 ef_c 200)" "$i" "$h (hnswlib)" "$(ratio_time "$i" "$h")" "≥ 1.0×"
  i=$(median "${qpss[@]}"); h=$(median "${h_qpss[@]}")
  row "vector queries/s at recall@10 ≥ 0.985, 1 thread (isovec $at; hnswlib $h_at)" "$i" "$h (hnswlib)" "$(ratio_rate "$i" "$h")" "≥ 1.15×"
  row "reopen $n_base from snapshot (s)" "$(median "${reopens[@]}")" "—" "" "< 0.5 s"
fi

# ---------------------------------------------------------------- SQL bulk upsert
if has sql; then
  command -v sqlite3 >/dev/null || { echo "bench-peers.sh: sql needs sqlite3 (apt-get install -y sqlite3)" >&2; exit 1; }
  [ -f "$ext" ] || { echo "bench-peers.sh: $ext is missing; run cargo build --release --workspace" >&2; exit 1; }
  echo "sql: isovec index, then isovec_upsert_all in sqlite3, per run" >&2
  for input in "$root/fixtures/corpus.jsonl" "$work/scifact-$n_sql_sci.jsonl"; do
    n=$(grep -c . "$input")
    db="$work/sql-$(basename "$input" .jsonl).db"
    rm -f "$db"
    # The table is the application's data, made before the clock starts.
    sqlite3 "$db" "CREATE TABLE docs(id TEXT PRIMARY KEY, body TEXT NOT NULL, meta TEXT);
      INSERT INTO docs SELECT json_extract(value, '\$.id'), json_extract(value, '\$.text'), json_extract(value, '\$.metadata')
      FROM json_each('[' || replace(trim(readfile('$input'), char(10)), char(10), ',') || ']');"
    cli=(); sql=()
    for r in $(seq "$runs"); do
      quiet
      rm -rf "$work/st-cli" "$work/st-sql"
      s=$(timed "$isovec" index --store "$work/st-cli" --collection docs "$input")
      cli+=("$(awk -v n="$n" -v s="$s" 'BEGIN { printf "%.1f", n / s }')")
      s=$(timed sqlite3 "$db" ".load $ext" "SELECT isovec_upsert_all('$work/st-sql', 'docs', id, body, meta) FROM docs ORDER BY rowid")
      grep -q "\"rows\":$n[,}]" "$work/last.out" || { echo "bench-peers.sh: isovec_upsert_all did not write $n rows: $(cat "$work/last.out")" >&2; exit 1; }
      sql+=("$(awk -v n="$n" -v s="$s" 'BEGIN { printf "%.1f", n / s }')")
    done
    i=$(median "${sql[@]}"); c=$(median "${cli[@]}")
    row "SQL bulk upsert, $(basename "$input") ($n docs; docs/s, whole process)" "$i" "$c (isovec index)" "$(ratio_rate "$i" "$c")" "≥ 0.8×"
  done
  rm -rf "$work/st-cli" "$work/st-sql"
fi

# ---------------------------------------------------------------- the table
echo
echo "## isovec against its peers — $started$([ $quick = 1 ] && echo ' — QUICK (small inputs, 1 run: not a claim)')"
echo
echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(uname -sr); load average $load_start at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end."
ort_version="$([ -x "$py" ] && "$py" -c 'import onnxruntime; print(onnxruntime.__version__)' 2>/dev/null || echo 'not used')"
echo "isovec $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?'), all-MiniLM-L6-v2 f32; ONNX Runtime $ort_version (fused graph, 2 threads), hnswlib; median of $runs run(s)."
echo
echo "| measure | isovec | peer | ratio | target |"
echo "|---|---:|---:|---:|---:|"
awk -F'\t' '{ printf "| %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5 }' "$results"
echo
echo "ratio: times faster than the peer (peer time ÷ isovec time, or isovec rate ÷ peer rate)."
echo
echo "Commands:"
sed 's/^/    /' "$log"

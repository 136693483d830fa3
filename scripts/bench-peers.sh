#!/usr/bin/env bash
# isovec against its peers (ONNX Runtime, hnswlib; ../shared/peers), one after the other on the same
# inputs in one run: N rounds, each running isovec and then the peer, so that both see the machine
# in the same state (a shared machine's speed drifts over minutes); the median of the rounds,
# printed as ONE table: measure | isovec | peer | ratio | target, with the date, the machine and
# every command it ran.
#
# Usage: scripts/bench-peers.sh [--quick] [--runs N] [--only LIST] [--work DIR] [--no-wait]
#   --quick     small inputs, 1 run (a minute or two): proves the script works; not a claim
#   --runs N    rounds per measure, the median is reported (default 3; --quick 1)
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
# isovec's figures are read from the JSON its commands write with `--json FILE` (the jget
# function below is the only place that reads them; adapt it when the JSON changes):
#   isovec bench encode --only stsb,scifact --json F — an array of measures; "stsb_batch32" and
#                          "scifact_batch32" give items_per_s;
#   isovec bench hybrid --json F — "dense" (encode + search of one text query at a time) and
#                          "encode" (encoding alone) give p50_ms, p90_ms, p99_ms;
#   isovec bench ann --json F — build_s, open_snapshot_s, and by_ef: [{ef, recall_at_10, qps_1t}];
#   isovec index / isovec embed / sqlite3 with the extension — timed as whole processes.
# Reading JSON takes python3 (any; the peers' venv python is used when it is there).
set -euo pipefail
export LC_ALL=C   # decimal points in printf and awk

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
    -h|--help) sed -n '2,30p' "$0"; exit 0 ;;
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
# The python that reads isovec's JSON files.
jpy="$py"; [ -x "$jpy" ] || jpy="$(command -v python3)" || { echo "bench-peers.sh: needs python3 to read isovec's --json files" >&2; exit 1; }

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
loads="$work/loads.txt"
: >"$loads"
started="$(date -u '+%Y-%m-%d %H:%M:%S UTC')"
load_start="$(cut -d' ' -f1-3 /proc/loadavg)"

# ---------------------------------------------------------------- helpers
# Logs a command as one shell line that can be pasted to run it again.
logcmd() {
  local a line=""
  for a in "$@"; do
    if [[ "$a" =~ ^[A-Za-z0-9_./:=,+-]+$ ]]; then line+=" $a"
    else
      a="${a//\\/\\\\}"; a="${a//\"/\\\"}"; a="${a//\$/\\\$}"; a="${a//\`/\\\`}"
      line+=" \"$a\""
    fi
  done
  echo "${line# }" >>"$log"
}
# Runs a command, logging it; its output goes to the file $1.
run_to() {
  local out="$1"; shift
  logcmd "$@"
  "$@" >"$out" 2>"$out.err" || { echo "bench-peers.sh: FAILED: $*" >&2; tail -20 "$out.err" >&2; exit 1; }
}
# Seconds a command takes (whole process), logging it.
timed() {
  logcmd "$@"
  local t0 t1
  t0=$(date +%s.%N)
  "$@" >"$work/last.out" 2>"$work/last.err" || { echo "bench-peers.sh: FAILED: $*" >&2; tail -20 "$work/last.err" >&2; exit 1; }
  t1=$(date +%s.%N)
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f\n", b - a }'
}
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
quiet() {
  [ $wait_quiet = 1 ] || return 0
  "$py" -c "import sys; sys.path.insert(0, '$peers'); from loadmon import wait_quiet; wait_quiet(log=lambda m: print(m, file=sys.stderr))"
}
# One row of the table: measure, isovec figure, peer figure, ratio (times faster), target.
row() { printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" >>"$results"; }
ratio_rate() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f×", a / b }'; }
ratio_time() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f×", b / a }'; }

# Load averages around a section: `section_start NAME` … `section_end`, listed under the table.
section_start() { section="$1"; section_load="$(cut -d' ' -f1-3 /proc/loadavg)"; section_t0=$(date +%s); }
section_end() { printf '%s\t%s\t%s\t%s\n' "$section" "$section_load" "$(cut -d' ' -f1-3 /proc/loadavg)" "$(( $(date +%s) - section_t0 ))" >>"$loads"; }

# ---------------------------------------------------------------- reading isovec's JSON
# jget FILE WHAT [ARG]: prints figures from the JSON file an isovec command wrote with --json;
# fails, naming the file and the key, when they are not there.
#   encode MEASURE  items/s of that measure of `bench encode` (e.g. stsb_batch32)
#   hybrid MODE     "p50 p90 p99" (ms) of `bench hybrid`'s dense/lexical/hybrid/encode latencies
#   ann_build       build seconds of `bench ann`;  ann_reopen: its open-from-snapshot seconds
#   ann_at RECALL   "ef recall qps_1t" of the smallest ef with recall@10 >= RECALL in `bench ann`
#   sql_rows        the "rows" of isovec_upsert_all's report (a line of sqlite3's output)
jget() {
  "$jpy" - "$@" <<'PY'
import json, sys
path, what, arg = sys.argv[1], sys.argv[2], (sys.argv[3] if len(sys.argv) > 3 else None)
def fail(msg):
    sys.exit(f"bench-peers.sh: {path}: {msg}; adapt jget in scripts/bench-peers.sh to the JSON")
try:
    if what == "sql_rows":
        lines = [l for l in open(path, encoding="utf-8") if l.strip().startswith("{")]
        if not lines:
            fail("no JSON report from isovec_upsert_all")
        d = json.loads(lines[-1])
    else:
        d = json.load(open(path, encoding="utf-8"))
except (OSError, ValueError) as e:
    fail(f"cannot read it as JSON ({e})")
def num(obj, key):
    v = obj.get(key) if isinstance(obj, dict) else None
    if not isinstance(v, (int, float)) or isinstance(v, bool):
        fail(f"no number at {key!r}")
    return v
if what == "encode":
    m = [x for x in d if isinstance(x, dict) and x.get("measure") == arg]
    if not m:
        fail(f"no measure {arg!r}")
    print(num(m[0], "items_per_s"))
elif what == "hybrid":
    print(*(num(d.get(arg), k) for k in ("p50_ms", "p90_ms", "p99_ms")))
elif what == "ann_build":
    print(num(d, "build_s"))
elif what == "ann_reopen":
    print(num(d, "open_snapshot_s"))
elif what == "ann_at":
    rows = d.get("by_ef")
    if not isinstance(rows, list) or not rows:
        fail("no by_ef list")
    ok = [r for r in rows if num(r, "recall_at_10") >= float(arg)]
    if not ok:
        sys.exit(f"bench-peers.sh: isovec reached no recall@10 of {arg} with ef up to {max(num(r, 'ef') for r in rows)} ({path})")
    r = min(ok, key=lambda r: num(r, "ef"))
    print(num(r, "ef"), num(r, "recall_at_10"), num(r, "qps_1t"))
elif what == "sql_rows":
    print(num(d, "rows"))
else:
    fail(f"unknown figure {what!r}")
PY
}

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
# `ort WHAT N` prints JSON: {"stsb": sentences/s, "scifact": docs/s, "p50": ms, "p90": ms, "p99":
# ms}, medians of N runs; the peers' own measuring code (ort_bench.throughput and single_latency).
ort() {
  local what="$1" n="$2"
  echo "$py - (the inline script of ort() in scripts/bench-peers.sh: ort_bench.throughput / single_latency) $what runs=$n n_sci=$n_sci queries=$work/queries-$n_q.txt (fused graph, 2 threads)" >>"$log"
  "$py" - "$peers" "$what" "$n" "$n_sci" "$work/queries-$n_q.txt" 2>"$work/ort.err" <<'PY'
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
  # The explicit bf16 option: bfloat16 dense products where the CPU has AVX-512 BF16, bfloat16
  # weights times f32 activations elsewhere.
  bf16_kind="bfloat16 weights, f32 products"; grep -qw avx512_bf16 /proc/cpuinfo && bf16_kind="bfloat16 products"
  echo "encode: per round, isovec bench encode (f32, then bf16: $bf16_kind, then int8), then ONNX Runtime" >&2
  section_start encode
  i_stss=(); i_scis=(); b_stss=(); b_scis=(); q_stss=(); q_scis=(); o_stss=(); o_scis=()
  for r in $(seq "$runs"); do
    quiet
    out="$work/bench-encode-$r.json"
    run_to "$work/bench-encode-$r.out" "$isovec" bench encode --data "$data" --only stsb,scifact --batch-sizes 32 --runs 1 --docs "$n_sci" --doc-max-length 256 --json "$out"
    i_stss+=("$(jget "$out" encode stsb_batch32)"); i_scis+=("$(jget "$out" encode scifact_batch32)")
    quiet
    out="$work/bench-encode-bf16-$r.json"
    run_to "$work/bench-encode-bf16-$r.out" "$isovec" bench encode --data "$data" --only stsb,scifact --batch-sizes 32 --runs 1 --docs "$n_sci" --doc-max-length 256 --dtype bf16 --json "$out"
    b_stss+=("$(jget "$out" encode stsb_batch32)"); b_scis+=("$(jget "$out" encode scifact_batch32)")
    quiet
    out="$work/bench-encode-int8-$r.json"
    run_to "$work/bench-encode-int8-$r.out" "$isovec" bench encode --data "$data" --only stsb,scifact --batch-sizes 32 --runs 1 --docs "$n_sci" --doc-max-length 256 --dtype int8 --json "$out"
    q_stss+=("$(jget "$out" encode stsb_batch32)"); q_scis+=("$(jget "$out" encode scifact_batch32)")
    quiet
    o=$(ort encode 1)
    o_stss+=("$(json_get "$o" stsb)"); o_scis+=("$(json_get "$o" scifact)")
  done
  section_end
  i_sts=$(median "${i_stss[@]}"); i_sci=$(median "${i_scis[@]}"); o_sts=$(median "${o_stss[@]}"); o_sci=$(median "${o_scis[@]}")
  row "SciFact $n_sci abstracts, 256 tokens, batch 32 (docs/s)" "$(printf '%.1f' "$i_sci")" "$(printf '%.1f' "$o_sci") (ORT)" "$(ratio_rate "$i_sci" "$o_sci")" "≥ 1.25×"
  row "STS-B test, 2,758 sentences, batch 32 (sentences/s)" "$(printf '%.1f' "$i_sts")" "$(printf '%.1f' "$o_sts") (ORT)" "$(ratio_rate "$i_sts" "$o_sts")" "≥ 1.5×"
  b_sts=$(median "${b_stss[@]}"); b_sci=$(median "${b_scis[@]}")
  row "SciFact, as above, isovec --dtype bf16 ($bf16_kind; docs/s; ORT f32)" "$(printf '%.1f' "$b_sci")" "$(printf '%.1f' "$o_sci") (ORT)" "$(ratio_rate "$b_sci" "$o_sci")" "≥ 1.25×"
  row "STS-B, as above, isovec --dtype bf16 ($bf16_kind; sentences/s; ORT f32)" "$(printf '%.1f' "$b_sts")" "$(printf '%.1f' "$o_sts") (ORT)" "$(ratio_rate "$b_sts" "$o_sts")" "≥ 1.5×"
  q_sts=$(median "${q_stss[@]}"); q_sci=$(median "${q_scis[@]}")
  row "SciFact, as above, isovec --dtype int8 (int8 dense products; docs/s; ORT f32)" "$(printf '%.1f' "$q_sci")" "$(printf '%.1f' "$o_sci") (ORT)" "$(ratio_rate "$q_sci" "$o_sci")" "≥ 1.25×"
  row "STS-B, as above, isovec --dtype int8 (int8 dense products; sentences/s; ORT f32)" "$(printf '%.1f' "$q_sts")" "$(printf '%.1f' "$o_sts") (ORT)" "$(ratio_rate "$q_sts" "$o_sts")" "≥ 1.5×"
fi

# ---------------------------------------------------------------- single text query
if has single || has ann; then vectors; fi
if has single; then
  echo "single: per round, isovec bench hybrid (dense: encode + search on $n_base documents; f32, then int8), then ONNX Runtime (encode only)" >&2
  section_start single
  p50s=(); p90s=(); p99s=(); e50s=(); q50s=(); o50s=(); o90s=(); o99s=()
  for r in $(seq "$runs"); do
    quiet
    out="$work/bench-hybrid-$r.json"
    run_to "$work/bench-hybrid-$r.out" "$isovec" bench hybrid --max-length 128 --docs "$work/base-$n_base.txt" --base "$work/base-$n_base.npy" --queries "$work/queries-$n_q.txt" --json "$out"
    read -r a b c < <(jget "$out" hybrid dense)
    p50s+=("$a"); p90s+=("$b"); p99s+=("$c")
    read -r a b c < <(jget "$out" hybrid encode)
    e50s+=("$a")
    quiet
    out="$work/bench-hybrid-int8-$r.json"
    run_to "$work/bench-hybrid-int8-$r.out" "$isovec" bench hybrid --max-length 128 --dtype int8 --docs "$work/base-$n_base.txt" --base "$work/base-$n_base.npy" --queries "$work/queries-$n_q.txt" --json "$out"
    read -r a b c < <(jget "$out" hybrid dense)
    q50s+=("$a")
    quiet
    o=$(ort single 1)
    o50s+=("$(json_get "$o" p50)"); o90s+=("$(json_get "$o" p90)"); o99s+=("$(json_get "$o" p99)")
  done
  section_end
  i=$(median "${p50s[@]}"); peer=$(median "${o50s[@]}")
  row "one text query, $n_q queries at 128 tokens, p50 (ms; isovec encode + search of $n_base docs, ORT encode only)" "$(printf '%.2f' "$i")" "$(printf '%.2f' "$peer") (ORT)" "$(ratio_time "$i" "$peer")" "≥ 1.25× (p50 ≤ 0.8× ORT's)"
  i=$(median "${p90s[@]}"); peer=$(median "${o90s[@]}")
  row "one text query, p90 (ms)" "$(printf '%.2f' "$i")" "$(printf '%.2f' "$peer") (ORT)" "$(ratio_time "$i" "$peer")" ""
  i=$(median "${p99s[@]}"); peer=$(median "${o99s[@]}")
  row "one text query, p99 (ms)" "$(printf '%.2f' "$i")" "$(printf '%.2f' "$peer") (ORT)" "$(ratio_time "$i" "$peer")" ""
  i=$(median "${e50s[@]}"); peer=$(median "${o50s[@]}")
  row "one text query, encoding alone, p50 (ms; both encode only)" "$(printf '%.2f' "$i")" "$(printf '%.2f' "$peer") (ORT)" "$(ratio_time "$i" "$peer")" ""
  i=$(median "${q50s[@]}"); peer=$(median "${o50s[@]}")
  row "one text query, isovec --dtype int8, p50 (ms; encode + search, ORT f32 encode only)" "$(printf '%.2f' "$i")" "$(printf '%.2f' "$peer") (ORT)" "$(ratio_time "$i" "$peer")" "≥ 1.25× (p50 ≤ 0.8× ORT's)"
fi

# ---------------------------------------------------------------- HNSW
if has ann; then
  echo "ann: per round, isovec bench ann (default parameters), then hnswlib (M 16, ef_construction 200, 2 threads)" >&2
  efs="16,24,32,48,56,64,96,128,192,256"
  section_start ann
  builds=(); reopens=(); qpss=(); at=""; h_builds=(); h_qpss=(); h_at=""
  for r in $(seq "$runs"); do
    quiet
    out="$work/bench-ann-$r.json"
    run_to "$work/bench-ann-$r.out" "$isovec" bench ann --base "$work/base-$n_base.npy" --queries "$work/queries-$n_q.npy" --gt "$work/gt-$n_base-$n_q.tsv" --ef "$efs" --json "$out"
    builds+=("$(jget "$out" ann_build)")
    reopens+=("$(jget "$out" ann_reopen)")
    read -r ef rec qps < <(jget "$out" ann_at 0.985) || exit 1
    qpss+=("$qps"); at="ef $ef, recall $rec"
    quiet
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
  section_end
  i=$(median "${builds[@]}"); h=$(median "${h_builds[@]}")
  row "HNSW build, $n_base × 384, 2 threads (s; isovec defaults, hnswlib M 16 ef_c 200)" "$(printf '%.1f' "$i")" "$(printf '%.1f' "$h") (hnswlib)" "$(ratio_time "$i" "$h")" "≥ 1.0×"
  i=$(median "${qpss[@]}"); h=$(median "${h_qpss[@]}")
  row "vector queries/s at recall@10 ≥ 0.985, 1 thread (isovec $at; hnswlib $h_at)" "$(printf '%.0f' "$i")" "$(printf '%.0f' "$h") (hnswlib)" "$(ratio_rate "$i" "$h")" "≥ 1.15×"
  row "reopen $n_base from snapshot (s)" "$(printf '%.2f' "$(median "${reopens[@]}")")" "—" "" "< 0.5 s"
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
    make_table="CREATE TABLE docs(id TEXT PRIMARY KEY, body TEXT NOT NULL, meta TEXT); INSERT INTO docs SELECT json_extract(value, '\$.id'), json_extract(value, '\$.text'), json_extract(value, '\$.metadata') FROM json_each('[' || replace(trim(readfile('$input'), char(10)), char(10), ',') || ']');"
    logcmd sqlite3 "$db" "$make_table"
    sqlite3 "$db" "$make_table"
    section_start "sql $(basename "$input")"
    cli=(); sql=()
    for r in $(seq "$runs"); do
      quiet
      rm -rf "$work/st-cli" "$work/st-sql"
      # Both end with the store closed (its snapshot written), as `isovec index` closes it.
      s=$(timed "$isovec" index --store "$work/st-cli" --collection docs "$input")
      cli+=("$(awk -v n="$n" -v s="$s" 'BEGIN { printf "%.1f", n / s }')")
      s=$(timed sqlite3 "$db" ".load $ext" "SELECT isovec_upsert_all('$work/st-sql', 'docs', id, body, meta) FROM docs ORDER BY rowid" "SELECT isovec_close('$work/st-sql')")
      got=$(jget "$work/last.out" sql_rows)
      [ "$got" = "$n" ] || { echo "bench-peers.sh: isovec_upsert_all wrote $got rows of $n: $(cat "$work/last.out")" >&2; exit 1; }
      sql+=("$(awk -v n="$n" -v s="$s" 'BEGIN { printf "%.1f", n / s }')")
    done
    section_end
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
echo "isovec $(git -C "$root" describe --always --dirty 2>/dev/null || echo '?'), all-MiniLM-L6-v2 f32; ONNX Runtime $ort_version (fused graph, 2 threads), hnswlib; median of $runs round(s), each isovec then the peer."
echo
echo "| measure | isovec | peer | ratio | target |"
echo "|---|---:|---:|---:|---:|"
awk -F'\t' '{ printf "| %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5 }' "$results"
echo
echo "ratio: times faster than the peer (peer time ÷ isovec time, or isovec rate ÷ peer rate)."
echo
echo "Load average (1, 5, 15 min) per section, at its start → at its end (other processes' load slows both sides):"
echo
awk -F'\t' '{ printf "- %s: %s → %s (%s s)\n", $1, $2, $3, $4 }' "$loads"
echo
echo "Commands:"
sed 's/^/    /' "$log"

#!/usr/bin/env python3
"""isovec against its peers (ONNX Runtime, hnswlib; ../shared/peers), one after the other on the same
inputs in one run: N rounds, each running isovec and then the peer, so that both see the machine
in the same state (a shared machine's speed drifts over minutes); the median of the rounds,
printed as ONE table: measure | isovec | peer | ratio | target, with the date, the machine and
every command it ran.

Usage: python scripts/bench_peers.py [--quick] [--runs N] [--only LIST] [--work DIR] [--no-wait]
  --quick     small inputs, 1 run (a minute or two): proves the script works; not a claim
  --runs N    rounds per measure, the median is reported (default 3; --quick 1)
  --only LIST comma list of: encode (STS-B, SciFact), single (one text query), ann (HNSW build,
              queries/s at recall 0.985, reopen), sql (isovec_upsert_all vs isovec index)
  --work DIR  where inputs, vectors and logs go (default target/bench-peers; vectors are reused)
  --no-wait   do not wait for a quiet machine (the peers' loadmon.py) before each section
Needs: `cargo build --release --workspace`, the default model (`isovec model fetch`), the peers
(`../shared/peers/setup.sh`), sqlite3 for `sql`, and the data ($ISOVEC_DATA, default ../shared/data).

The ratio is always "times faster than the peer": peer time / isovec time, or isovec rate / peer
rate (> 1: isovec ahead). The target column is issue 17's "done when" in the same terms (a p50
latency of at most 0.8x ORT's is a ratio of at least 1.25).

isovec's figures are read from the JSON its commands write with `--json FILE` (the jget
function below is the only place that reads them; adapt it when the JSON changes):
  isovec bench encode --only stsb,scifact --json F - an array of measures; "stsb_batch32" and
                         "scifact_batch32" give items_per_s;
  isovec bench hybrid --json F - "dense" (encode + search of one text query at a time) and
                         "encode" (encoding alone) give p50_ms, p90_ms, p99_ms;
  isovec bench ann --json F - build_s, open_snapshot_s, and by_ef: [{ef, recall_at_10, qps_1t}];
  isovec index / isovec embed / sqlite3 with the extension - timed as whole processes.
Runs with any python3 (standard library only); ONNX Runtime, hnswlib and numpy run in the peers'
venv python ($PEERS_DIR/venv/bin/python), which is also a good python to run this with.
"""

import gzip
import json
import os
import re
import shutil
import subprocess
import sys
import time

PROG = "bench_peers.py"
ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))


def die(msg, code=1):
    print(f"{PROG}: {msg}", file=sys.stderr)
    sys.exit(code)


def cut_loadavg():
    """The first three fields of /proc/loadavg (load averages over 1, 5 and 15 minutes)."""
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split(" ")[:3])


def parse_args(argv):
    opts = {"quick": False, "runs": None, "only": "encode,single,ann,sql",
            "work": os.path.join(ROOT, "target", "bench-peers"), "wait": True}
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in ("--runs", "--only", "--work"):
            if i + 1 >= len(argv):
                die(f"{a} needs a value (see --help)", 2)
            opts[a[2:]] = argv[i + 1]
            i += 1
        elif a == "--quick":
            opts["quick"] = True
        elif a == "--no-wait":
            opts["wait"] = False
        elif a in ("-h", "--help"):
            print(__doc__, end="")
            sys.exit(0)
        else:
            die(f"unknown option {a} (see --help)", 2)
        i += 1
    if opts["runs"] is None:
        opts["runs"] = 1 if opts["quick"] else 3
    else:
        given = opts["runs"]
        try:
            opts["runs"] = int(given)
        except ValueError:
            opts["runs"] = 0
        if opts["runs"] < 1:
            die(f"--runs needs a whole number of at least 1, not {given!r}", 2)
    if opts["quick"]:
        opts["wait"] = False
    return opts


# ---------------------------------------------------------------- helpers
SAFE_ARG = re.compile(r"[A-Za-z0-9_./:=,+-]+")


def shell_line(args):
    """A command as one shell line that can be pasted to run it again."""
    out = []
    for a in args:
        a = str(a)
        if SAFE_ARG.fullmatch(a):
            out.append(a)
        else:
            for c in ("\\", '"', "$", "`"):
                a = a.replace(c, "\\" + c)
            out.append(f'"{a}"')
    return " ".join(out)


def median(values):
    """The middle value; of an even count, the lower of the two middle ones."""
    v = sorted(values)
    return v[(len(v) + 1) // 2 - 1]


def ratio_rate(a, b):
    return f"{a / b:.2f}×"


def ratio_time(a, b):
    return f"{b / a:.2f}×"


def tail(path, n=20):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return ""


class Bench:
    def __init__(self, opts):
        self.quick = opts["quick"]
        self.runs = opts["runs"]
        self.only = opts["only"]
        self.work = opts["work"]
        self.wait_quiet = opts["wait"]

        # Decimal points in every child's output too, as the shell script had it.
        os.environ["LC_ALL"] = "C"
        target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target")
        self.isovec = os.path.join(target, "release", "isovec")
        self.ext = os.path.join(target, "release", "libisovec_sqlite.so")
        data = os.environ.get("ISOVEC_DATA") or os.path.join(ROOT, "..", "shared", "data")
        if not os.path.isdir(data):
            die("no data folder; set ISOVEC_DATA")
        self.data = os.path.abspath(data)
        peers = os.environ.get("PEERS_SRC") or os.path.join(ROOT, "..", "shared", "peers")
        if not os.path.isdir(peers):
            die("no peers folder; set PEERS_SRC to ../shared/peers")
        self.peers = os.path.abspath(peers)
        peers_dir = os.environ.get("PEERS_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "isovec-peers")
        os.environ["PEERS_DIR"] = peers_dir
        self.py = os.path.join(peers_dir, "venv", "bin", "python")
        os.environ["ISOVEC_DATA"] = self.data
        if not os.access(self.isovec, os.X_OK):
            die(f"{self.isovec} is missing; run cargo build --release --workspace")
        if not self.wait_quiet:
            os.environ["PEERS_NO_WAIT"] = "1"
        if self.has("encode") or self.has("single") or self.has("ann") or self.wait_quiet:
            if not os.access(self.py, os.X_OK):
                die(f"no peer venv at {peers_dir}; run {self.peers}/setup.sh")

        # Sizes: the issue's, or small ones for --quick.
        if self.quick:
            self.n_sci, self.n_base, self.n_q, self.n_sql_sci = 100, 10000, 100, 200
        else:
            # SciFact has 5,183 abstracts: the SQL measure takes them all.
            self.n_sci, self.n_base, self.n_q, self.n_sql_sci = 1000, 100000, 1000, 100000
        os.makedirs(self.work, exist_ok=True)
        self.log = os.path.join(self.work, "commands.txt")
        self.results = os.path.join(self.work, "results.tsv")
        self.loads = os.path.join(self.work, "loads.txt")
        for path in (self.log, self.results, self.loads):
            open(path, "w").close()
        self.started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
        self.load_start = cut_loadavg()

    def w(self, name):
        return os.path.join(self.work, name)

    def has(self, section):
        return section in self.only.split(",")

    # Logs a command as one shell line that can be pasted to run it again.
    def logcmd(self, args):
        self.logline(shell_line(args))

    def logline(self, line):
        with open(self.log, "a", encoding="utf-8") as f:
            f.write(line + "\n")

    def run_to(self, out, args):
        """Runs a command, logging it; its output goes to the file `out`, its errors to `out`.err."""
        self.logcmd(args)
        with open(out, "wb") as o, open(out + ".err", "wb") as e:
            rc = subprocess.run(args, stdout=o, stderr=e).returncode
        if rc != 0:
            print(f"{PROG}: FAILED: {' '.join(map(str, args))}", file=sys.stderr)
            sys.stderr.write(tail(out + ".err"))
            sys.exit(1)

    def timed(self, args):
        """Seconds a command takes (whole process, to the millisecond), logging it; its output
        goes to last.out and last.err in the work folder."""
        self.logcmd(args)
        with open(self.w("last.out"), "wb") as o, open(self.w("last.err"), "wb") as e:
            t0 = time.time()
            rc = subprocess.run(args, stdout=o, stderr=e).returncode
            t1 = time.time()
        if rc != 0:
            print(f"{PROG}: FAILED: {' '.join(map(str, args))}", file=sys.stderr)
            sys.stderr.write(tail(self.w("last.err")))
            sys.exit(1)
        return float(f"{t1 - t0:.3f}")

    def quiet(self):
        """Waits for a quiet machine (the peers' loadmon.wait_quiet) unless told not to."""
        if not self.wait_quiet:
            return
        if self.peers not in sys.path:
            sys.path.insert(0, self.peers)
        from loadmon import wait_quiet
        wait_quiet(log=lambda m: print(m, file=sys.stderr))

    # One row of the table: measure, isovec figure, peer figure, ratio (times faster), target.
    def row(self, *cells):
        with open(self.results, "a", encoding="utf-8") as f:
            f.write("\t".join(cells) + "\n")

    # Load averages around a section: section_start(NAME) … section_end(), listed under the table.
    def section_start(self, name):
        self.section = (name, cut_loadavg(), int(time.time()))

    def section_end(self):
        name, load, t0 = self.section
        with open(self.loads, "a", encoding="utf-8") as f:
            f.write(f"{name}\t{load}\t{cut_loadavg()}\t{int(time.time()) - t0}\n")

    # ------------------------------------------------------------ reading isovec's JSON
    @staticmethod
    def jget(path, what, arg=None):
        """Figures from the JSON file an isovec command wrote with --json; exits, naming the file
        and the key, when they are not there.
          encode MEASURE  items/s of that measure of `bench encode` (e.g. stsb_batch32)
          hybrid MODE     (p50, p90, p99) (ms) of `bench hybrid`'s dense/lexical/hybrid/encode
          ann_build       build seconds of `bench ann`;  ann_reopen: its open-from-snapshot seconds
          ann_at RECALL   (ef, recall, qps_1t) of the smallest ef with recall@10 >= RECALL
          sql_rows        the "rows" of isovec_upsert_all's report (a line of sqlite3's output)"""

        def fail(msg):
            sys.exit(f"{PROG}: {path}: {msg}; adapt jget in scripts/bench_peers.py to the JSON")

        try:
            if what == "sql_rows":
                with open(path, encoding="utf-8") as f:
                    lines = [l for l in f if l.strip().startswith("{")]
                if not lines:
                    fail("no JSON report from isovec_upsert_all")
                d = json.loads(lines[-1])
            else:
                with open(path, encoding="utf-8") as f:
                    d = json.load(f)
        except (OSError, ValueError) as e:
            fail(f"cannot read it as JSON ({e})")

        def num(obj, key):
            v = obj.get(key) if isinstance(obj, dict) else None
            if not isinstance(v, (int, float)) or isinstance(v, bool):
                fail(f"no number at {key!r}")
            return v

        if what == "encode":
            m = [x for x in d if isinstance(x, dict) and x.get("measure") == arg] if isinstance(d, list) else []
            if not m:
                fail(f"no measure {arg!r}")
            return num(m[0], "items_per_s")
        if what == "hybrid":
            mode = d.get(arg) if isinstance(d, dict) else None
            return tuple(num(mode, k) for k in ("p50_ms", "p90_ms", "p99_ms"))
        if what == "ann_build":
            return num(d, "build_s")
        if what == "ann_reopen":
            return num(d, "open_snapshot_s")
        if what == "ann_at":
            rows = d.get("by_ef") if isinstance(d, dict) else None
            if not isinstance(rows, list) or not rows:
                fail("no by_ef list")
            ok = [r for r in rows if num(r, "recall_at_10") >= float(arg)]
            if not ok:
                sys.exit(f"{PROG}: isovec reached no recall@10 of {arg} with ef up to "
                         f"{max(num(r, 'ef') for r in rows)} ({path})")
            r = min(ok, key=lambda r: num(r, "ef"))
            return num(r, "ef"), num(r, "recall_at_10"), num(r, "qps_1t")
        if what == "sql_rows":
            return num(d, "rows")
        fail(f"unknown figure {what!r}")

    # ------------------------------------------------------------ inputs
    def inputs(self):
        print(f"preparing inputs in {self.work}", file=sys.stderr)
        data, work = self.data, self.work

        def write(path, lines):
            if not os.path.exists(path):
                with open(path, "w", encoding="utf-8") as f:
                    f.writelines(l + "\n" for l in lines)

        with gzip.open(f"{data}/ann/sentences.txt.gz", "rt", encoding="utf-8") as f:
            write(f"{work}/base-{self.n_base}.txt", [l.rstrip("\n") for _, l in zip(range(self.n_base), f)])
        with open(f"{data}/ann/queries.txt", encoding="utf-8") as f:
            write(f"{work}/queries-{self.n_q}.txt", [l.rstrip("\n") for l in f if l.strip()][:self.n_q])
        docs = []
        with gzip.open(f"{data}/retrieval/scifact/corpus.jsonl.gz", "rt", encoding="utf-8") as f:
            for l in f:
                if len(docs) >= self.n_sql_sci:
                    break
                d = json.loads(l)
                docs.append(json.dumps({"id": d["_id"], "text": (d["title"] + " " + d["text"]).strip()}))
        write(f"{work}/scifact-{self.n_sql_sci}.jsonl", docs)

    # The ANN vectors (default model, mean pooling, L2, 128 tokens, as the data README says) and the
    # exact neighbours: the data's gt_top100.tsv for the full set, numpy's for a --quick subset.
    def vectors(self):
        base, queries = self.w(f"base-{self.n_base}.npy"), self.w(f"queries-{self.n_q}.npy")
        if not os.path.isfile(base):
            self.run_to(self.w("embed-base.out"), [self.isovec, "embed", "--max-length", "128", "--input",
                                                   self.w(f"base-{self.n_base}.txt"), "--out", base])
        if not os.path.isfile(queries):
            self.run_to(self.w("embed-queries.out"), [self.isovec, "embed", "--max-length", "128", "--input",
                                                      self.w(f"queries-{self.n_q}.txt"), "--out", queries])
        if not os.path.isfile(self.w(f"gt-{self.n_base}-{self.n_q}.npy")):
            rc = subprocess.run([self.py, "-", self.data, self.work, str(self.n_base), str(self.n_q)],
                                input=GT_SCRIPT, text=True).returncode
            if rc != 0:
                die(f"the exact neighbours (GT_SCRIPT, numpy) failed with status {rc}")

    # ------------------------------------------------------------ ONNX Runtime (fused graph)
    def ort(self, what, n):
        """{"stsb": sentences/s, "scifact": docs/s, "p50": ms, "p90": ms, "p99": ms}, medians of n runs;
        the peers' own measuring code (ort_bench.throughput and single_latency)."""
        qfile = self.w(f"queries-{self.n_q}.txt")
        self.logline(f"{self.py} - (the inline script ORT_SCRIPT in scripts/bench_peers.py: ort_bench.throughput"
                     f" / single_latency) {what} runs={n} n_sci={self.n_sci} queries={qfile} (fused graph, 2 threads)")
        with open(self.w("ort.err"), "wb") as e:
            p = subprocess.run([self.py, "-", self.peers, what, str(n), str(self.n_sci), qfile],
                               input=ORT_SCRIPT.encode(), stdout=subprocess.PIPE, stderr=e)
        if p.returncode != 0:
            print(f"{PROG}: FAILED: ONNX Runtime's {what} (ORT_SCRIPT)", file=sys.stderr)
            sys.stderr.write(tail(self.w("ort.err")))
            sys.exit(1)
        return json.loads(p.stdout)

    # ------------------------------------------------------------ encode
    def encode(self):
        # The explicit bf16 option: bfloat16 dense products where the CPU has AVX-512 BF16, bfloat16
        # weights times f32 activations elsewhere.
        with open("/proc/cpuinfo") as f:
            bf16 = re.search(r"(?<!\w)avx512_bf16(?!\w)", f.read()) is not None
        bf16_kind = "bfloat16 products" if bf16 else "bfloat16 weights, f32 products"
        print(f"encode: per round, isovec bench encode (f32, then bf16: {bf16_kind}, then int8), then ONNX Runtime",
              file=sys.stderr)
        self.section_start("encode")
        isovec = {dtype: {"stsb": [], "scifact": []} for dtype in ("f32", "bf16", "int8")}
        o_sts, o_sci = [], []
        for r in range(1, self.runs + 1):
            for dtype, stem in (("f32", "bench-encode"), ("bf16", "bench-encode-bf16"), ("int8", "bench-encode-int8")):
                self.quiet()
                out = self.w(f"{stem}-{r}.json")
                self.run_to(self.w(f"{stem}-{r}.out"),
                            [self.isovec, "bench", "encode", "--data", self.data, "--only", "stsb,scifact",
                             "--batch-sizes", "32", "--runs", "1", "--docs", str(self.n_sci), "--doc-max-length", "256"]
                            + ([] if dtype == "f32" else ["--dtype", dtype]) + ["--json", out])
                isovec[dtype]["stsb"].append(self.jget(out, "encode", "stsb_batch32"))
                isovec[dtype]["scifact"].append(self.jget(out, "encode", "scifact_batch32"))
            self.quiet()
            o = self.ort("encode", 1)
            o_sts.append(o["stsb"])
            o_sci.append(o["scifact"])
        self.section_end()
        o_sts, o_sci = median(o_sts), median(o_sci)
        labels = {
            "f32": (f"SciFact {self.n_sci} abstracts, 256 tokens, batch 32 (docs/s)",
                    "STS-B test, 2,758 sentences, batch 32 (sentences/s)"),
            "bf16": (f"SciFact, as above, isovec --dtype bf16 ({bf16_kind}; docs/s; ORT f32)",
                     f"STS-B, as above, isovec --dtype bf16 ({bf16_kind}; sentences/s; ORT f32)"),
            "int8": ("SciFact, as above, isovec --dtype int8 (int8 dense products; docs/s; ORT f32)",
                     "STS-B, as above, isovec --dtype int8 (int8 dense products; sentences/s; ORT f32)"),
        }
        for dtype in ("f32", "bf16", "int8"):
            i_sci, i_sts = median(isovec[dtype]["scifact"]), median(isovec[dtype]["stsb"])
            sci_label, sts_label = labels[dtype]
            self.row(sci_label, f"{i_sci:.1f}", f"{o_sci:.1f} (ORT)", ratio_rate(i_sci, o_sci), "≥ 1.25×")
            self.row(sts_label, f"{i_sts:.1f}", f"{o_sts:.1f} (ORT)", ratio_rate(i_sts, o_sts), "≥ 1.5×")

    # ------------------------------------------------------------ single text query
    def single(self):
        print(f"single: per round, isovec bench hybrid (dense: encode + search on {self.n_base} documents; "
              "f32, then int8), then ONNX Runtime (encode only)", file=sys.stderr)
        self.section_start("single")
        p50s, p90s, p99s, e50s, q50s, o50s, o90s, o99s = ([] for _ in range(8))
        docs, base = self.w(f"base-{self.n_base}.txt"), self.w(f"base-{self.n_base}.npy")
        queries = self.w(f"queries-{self.n_q}.txt")
        for r in range(1, self.runs + 1):
            self.quiet()
            out = self.w(f"bench-hybrid-{r}.json")
            self.run_to(self.w(f"bench-hybrid-{r}.out"),
                        [self.isovec, "bench", "hybrid", "--max-length", "128", "--docs", docs, "--base", base,
                         "--queries", queries, "--json", out])
            a, b, c = self.jget(out, "hybrid", "dense")
            p50s.append(a), p90s.append(b), p99s.append(c)
            e50s.append(self.jget(out, "hybrid", "encode")[0])
            self.quiet()
            out = self.w(f"bench-hybrid-int8-{r}.json")
            self.run_to(self.w(f"bench-hybrid-int8-{r}.out"),
                        [self.isovec, "bench", "hybrid", "--max-length", "128", "--dtype", "int8", "--docs", docs,
                         "--base", base, "--queries", queries, "--json", out])
            q50s.append(self.jget(out, "hybrid", "dense")[0])
            self.quiet()
            o = self.ort("single", 1)
            o50s.append(o["p50"]), o90s.append(o["p90"]), o99s.append(o["p99"])
        self.section_end()
        target = "≥ 1.25× (p50 ≤ 0.8× ORT's)"
        for label, mine, peer, tgt in (
            (f"one text query, {self.n_q} queries at 128 tokens, p50 (ms; isovec encode + search of "
             f"{self.n_base} docs, ORT encode only)", p50s, o50s, target),
            ("one text query, p90 (ms)", p90s, o90s, ""),
            ("one text query, p99 (ms)", p99s, o99s, ""),
            ("one text query, encoding alone, p50 (ms; both encode only)", e50s, o50s, ""),
            ("one text query, isovec --dtype int8, p50 (ms; encode + search, ORT f32 encode only)", q50s, o50s, target),
        ):
            i, p = median(mine), median(peer)
            self.row(label, f"{i:.2f}", f"{p:.2f} (ORT)", ratio_time(i, p), tgt)

    # ------------------------------------------------------------ HNSW
    def ann(self):
        print("ann: per round, isovec bench ann (default parameters), then hnswlib (M 16, ef_construction 200, "
              "2 threads)", file=sys.stderr)
        efs = "16,24,32,48,56,64,96,128,192,256"
        base, queries = self.w(f"base-{self.n_base}.npy"), self.w(f"queries-{self.n_q}.npy")
        self.section_start("ann")
        builds, reopens, qpss, h_builds, h_qpss = [], [], [], [], []
        at = h_at = ""
        for r in range(1, self.runs + 1):
            self.quiet()
            out = self.w(f"bench-ann-{r}.json")
            self.run_to(self.w(f"bench-ann-{r}.out"),
                        [self.isovec, "bench", "ann", "--base", base, "--queries", queries,
                         "--gt", self.w(f"gt-{self.n_base}-{self.n_q}.tsv"), "--ef", efs, "--json", out])
            builds.append(self.jget(out, "ann_build"))
            reopens.append(self.jget(out, "ann_reopen"))
            ef, rec, qps = self.jget(out, "ann_at", "0.985")
            qpss.append(qps)
            at = f"ef {ef}, recall {rec}"
            self.quiet()
            jsonl = self.w(f"hnswlib-{r}.jsonl")
            if os.path.exists(jsonl):
                os.remove(jsonl)
            self.run_to(self.w(f"hnswlib-{r}.out"),
                        [self.py, f"{self.peers}/ann_bench.py", "run", "--base", base, "--queries", queries,
                         "--gt", self.w(f"gt-{self.n_base}-{self.n_q}.npy"), "--libs", "hnswlib", "--M", "16",
                         "--efc", "200", "--ef", efs, "--build-threads", "2", "--repeats", "3", "--json-out", jsonl])
            try:
                with open(jsonl, encoding="utf-8") as f:
                    rows = [json.loads(l) for l in f]
                ok = [x for x in rows if x["recall10"] >= 0.985] or [max(rows, key=lambda x: x["recall10"])]
                h = ok[0]
                h_builds.append(rows[0]["build_s"])
                h_qpss.append(h["qps_1t"])
                h_at = f"ef {h['ef']}, recall {h['recall10']}"
            except (OSError, ValueError, KeyError, IndexError) as e:
                die(f"{jsonl}: cannot read hnswlib's results ({e!r})")
        self.section_end()
        i, h = median(builds), median(h_builds)
        self.row(f"HNSW build, {self.n_base} × 384, 2 threads (s; isovec defaults, hnswlib M 16 ef_c 200)",
                 f"{i:.1f}", f"{h:.1f} (hnswlib)", ratio_time(i, h), "≥ 1.0×")
        i, h = median(qpss), median(h_qpss)
        self.row(f"vector queries/s at recall@10 ≥ 0.985, 1 thread (isovec {at}; hnswlib {h_at})",
                 f"{i:.0f}", f"{h:.0f} (hnswlib)", ratio_rate(i, h), "≥ 1.15×")
        self.row(f"reopen {self.n_base} from snapshot (s)", f"{median(reopens):.2f}", "—", "", "< 0.5 s")

    # ------------------------------------------------------------ SQL bulk upsert
    def sql(self):
        if shutil.which("sqlite3") is None:
            die("sql needs sqlite3 (apt-get install -y sqlite3)")
        if not os.path.isfile(self.ext):
            die(f"{self.ext} is missing; run cargo build --release --workspace")
        print("sql: isovec index, then isovec_upsert_all in sqlite3, per run", file=sys.stderr)
        st_cli, st_sql = self.w("st-cli"), self.w("st-sql")
        for inp in (os.path.join(ROOT, "fixtures", "corpus.jsonl"), self.w(f"scifact-{self.n_sql_sci}.jsonl")):
            with open(inp, "rb") as f:
                n = sum(1 for l in f.read().split(b"\n") if l)  # the lines with a character, as grep -c .
            name = os.path.basename(inp)
            db = self.w(f"sql-{name[:-len('.jsonl')] if name.endswith('.jsonl') and name != '.jsonl' else name}.db")
            if os.path.lexists(db):
                os.remove(db)
            # The table is the application's data, made before the clock starts.
            make_table = ("CREATE TABLE docs(id TEXT PRIMARY KEY, body TEXT NOT NULL, meta TEXT); INSERT INTO docs "
                          "SELECT json_extract(value, '$.id'), json_extract(value, '$.text'), "
                          "json_extract(value, '$.metadata') FROM json_each('[' || replace(trim(readfile("
                          f"'{inp}'), char(10)), char(10), ',') || ']');")
            self.logcmd(["sqlite3", db, make_table])
            rc = subprocess.run(["sqlite3", db, make_table]).returncode
            if rc != 0:
                die(f"FAILED: sqlite3 {db} {make_table}")
            self.section_start(f"sql {name}")
            cli, sql = [], []
            for _ in range(self.runs):
                self.quiet()
                shutil.rmtree(st_cli, ignore_errors=True)
                shutil.rmtree(st_sql, ignore_errors=True)
                # Both end with the store closed (its snapshot written), as `isovec index` closes it.
                s = self.timed([self.isovec, "index", "--store", st_cli, "--collection", "docs", inp])
                cli.append(float(f"{n / s:.1f}"))
                s = self.timed(["sqlite3", db, f".load {self.ext}",
                                f"SELECT isovec_upsert_all('{st_sql}', 'docs', id, body, meta) FROM docs ORDER BY rowid",
                                f"SELECT isovec_close('{st_sql}')"])
                got = self.jget(self.w("last.out"), "sql_rows")
                if str(got) != str(n):
                    with open(self.w("last.out"), encoding="utf-8", errors="replace") as f:
                        last = f.read().rstrip("\n")
                    die(f"isovec_upsert_all wrote {got} rows of {n}: {last}")
                sql.append(float(f"{n / s:.1f}"))
            self.section_end()
            i, c = median(sql), median(cli)
            self.row(f"SQL bulk upsert, {name} ({n} docs; docs/s, whole process)", f"{i:.1f}",
                     f"{c:.1f} (isovec index)", ratio_rate(i, c), "≥ 0.8×")
        shutil.rmtree(st_cli, ignore_errors=True)
        shutil.rmtree(st_sql, ignore_errors=True)

    # ------------------------------------------------------------ the table
    def table(self):
        ncpu = len(os.sched_getaffinity(0))
        model = ""
        with open("/proc/cpuinfo") as f:
            for line in f:
                if "model name" in line:
                    model = line.rstrip("\n").split(":", 1)[-1].lstrip(" ")  # cut -d: -f2-, less the spaces
                    break
        u = os.uname()
        ort_version = "not used"
        if os.access(self.py, os.X_OK):
            p = subprocess.run([self.py, "-c", "import onnxruntime; print(onnxruntime.__version__)"],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            if p.returncode == 0:
                ort_version = p.stdout.rstrip("\n")
        p = subprocess.run(["git", "-C", ROOT, "describe", "--always", "--dirty"],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        version = p.stdout.rstrip("\n") if p.returncode == 0 else "?"
        with open(self.results, encoding="utf-8") as f:
            rows = [l.rstrip("\n").split("\t") for l in f]
        with open(self.loads, encoding="utf-8") as f:
            loads = [l.rstrip("\n").split("\t") for l in f]
        with open(self.log, encoding="utf-8") as f:
            commands = [l.rstrip("\n") for l in f]
        quick = " — QUICK (small inputs, 1 run: not a claim)" if self.quick else ""
        lines = [
            "",
            f"## isovec against its peers — {self.started}{quick}",
            "",
            f"Machine: {ncpu} cores, {model}, {u.sysname} {u.release}; load average {self.load_start} at the start, "
            f"{cut_loadavg()} at the end.",
            f"isovec {version}, all-MiniLM-L6-v2 f32; ONNX Runtime {ort_version} (fused graph, 2 threads), hnswlib; "
            f"median of {self.runs} round(s), each isovec then the peer.",
            "",
            "| measure | isovec | peer | ratio | target |",
            "|---|---:|---:|---:|---:|",
            *("| {} | {} | {} | {} | {} |".format(*(r + [""] * 5)[:5]) for r in rows),
            "",
            "ratio: times faster than the peer (peer time ÷ isovec time, or isovec rate ÷ peer rate).",
            "",
            "Load average (1, 5, 15 min) per section, at its start → at its end (other processes' load slows both sides):",
            "",
            *("- {}: {} → {} ({} s)".format(*(l + [""] * 4)[:4]) for l in loads),
            "",
            "Commands:",
            *("    " + c for c in commands),
        ]
        sys.stdout.write("\n".join(lines) + "\n")
        sys.stdout.flush()

    def main(self):
        self.inputs()
        if self.has("encode"):
            self.encode()
        if self.has("single") or self.has("ann"):
            self.vectors()
        if self.has("single"):
            self.single()
        if self.has("ann"):
            self.ann()
        if self.has("sql"):
            self.sql()
        self.table()


# Runs in the peers' venv python: the exact neighbours of the ANN queries.
GT_SCRIPT = r"""
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
"""

# Runs in the peers' venv python (a fresh process per round): ONNX Runtime with the fused graph,
# measured by the peers' own code; prints one JSON object.
ORT_SCRIPT = r"""
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
"""


if __name__ == "__main__":
    Bench(parse_args(sys.argv[1:])).main()

"""Inputs that once killed the host process (an abort for a huge k, a stack overflow for a
deeply nested filter, gigabytes for a huge text), each given to isovec in a child Python process:
the child must get an isovec error or a bounded answer, go on, and find the store answering."""

import subprocess
import sys
import textwrap

import pytest

SETUP = """
import json, sys, tempfile
import isovec
docs = isovec.Store(tempfile.mkdtemp()).collection("docs")
docs.add(["d0", "d1", "d2"],
         ["whales sing under the sea", "bread dough rises in the oven", "rovers drill red rocks"],
         metadatas=[{"n": 0}, {"n": 1}, {"n": 2}])

def refused(call, message):
    try:
        call()
    except isovec.IsovecError as e:
        assert message in str(e), str(e)
    else:
        raise AssertionError("no error")
"""

CASES = {
    "huge k": """
for k in (10**9, 2**64 - 1):
    for mode in ("dense", "lexical", "hybrid", "exact"):
        hits = docs.search("whales sea bread rocks", k=k, mode=mode)
        assert 1 <= len(hits) <= 3, (k, mode, hits)
""",
    "nested filter": """
for f in ("(" * 20000 + "n>=0" + ")" * 20000, "NOT " * 20000 + "n>=0"):
    for mode in ("dense", "lexical", "hybrid"):
        refused(lambda: docs.search("whales", filter=f, mode=mode), "nested more than 64 levels")
deep = '{"n": 0}'
for _ in range(20000):
    deep = '{"$not": ' + deep + "}"
refused(lambda: docs.search("whales", filter=deep), "filter")
""",
    "chroma api": """
for n in (10**9, 2**64 - 1):
    r = docs.query(query_texts=["whales", "bread"], n_results=n)
    assert [len(ids) for ids in r["ids"]] == [3, 3], r
assert docs.get(limit=2**64 - 1, offset=2**64 - 1)["ids"] == []
assert len(docs.get(limit=2**64 - 1)["ids"]) == 3
deep = '{"n": 0}'
for _ in range(20000):
    deep = '{"$not": ' + deep + "}"
refused(lambda: docs.query(query_texts=["whales"], where=deep), "filter")
refused(lambda: docs.get(where=deep), "filter")
refused(lambda: docs.delete(where=deep), "filter")
mine = isovec.Store(tempfile.mkdtemp()).get_or_create_collection("mine", dims=3, model="m")
refused(lambda: mine.add(ids=["a"], embeddings=[[float("nan"), 0, 0]]), 'document "a"')
refused(lambda: mine.add(ids=["a"], embeddings=[[0, 0, 0]]), 'document "a"')
refused(lambda: mine.query(query_embeddings=[[1, 0]]), "expected 3")
refused(lambda: mine.query(query_embeddings=[[1, 0, 0]], n_results=5, ef=10**12), "ef")
assert mine.count() == 0
""",
    "huge texts": """
refused(lambda: docs.add(["huge"], ["whales " * ((16 << 20) // 7 + 1)]), "split it into several documents")
refused(lambda: docs.search("whales " * ((1 << 20) // 7 + 1)), "search with a shorter text")
assert docs.count() == 3
""",
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_gets_an_error_and_the_process_goes_on(pipeline, case):
    code = textwrap.dedent(SETUP) + textwrap.dedent(CASES[case]) + textwrap.dedent("""
        hits = docs.search("songs of whales", k=1)
        assert hits[0]["id"] == "d0", hits
        print("still here")
    """)
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, f"{case}: exit {run.returncode} (negative: killed by a signal)\n{run.stderr[-3000:]}"
    assert run.stdout.strip().endswith("still here"), run.stdout

"""``isovec.connect``: the embedded package's API against an ``isovec serve`` process.

- The same calls give the same answers through both transports (a store served, then the same
  store opened embedded).
- Four client processes write and read at once for a while; every write the server
  acknowledged is then found by id and by each search mode.
- The embedded package, finding the store locked by the server, says where the server is.
"""

import multiprocessing
import os
import subprocess
import tempfile

import numpy as np
import pytest

import isovec

WORDS = "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike".split()


class Served:
    """An ``isovec serve`` of ``store`` on a free port, stopped (SIGTERM) at the end."""

    def __init__(self, isovec_bin, store, *args):
        self.process = subprocess.Popen(
            [str(isovec_bin), "serve", "--store", str(store), "--addr", "127.0.0.1:0", *args],
            stdout=subprocess.PIPE,
            text=True,
        )
        line = self.process.stdout.readline()
        assert line.startswith("isovec serve: listening on "), line
        self.url = line.split()[-1]

    def stop(self):
        self.process.terminate()  # SIGTERM: finish, snapshot, release the store
        assert self.process.wait(timeout=60) == 0


def text_of(client, i):
    """A text of its own: a word no other document has, and common words."""
    return f"doc{client}x{i} {WORDS[i % len(WORDS)]} {WORDS[(i * 7) % len(WORDS)]} about things"


def client_run(url, client, seconds, out):
    """Writes (upserts, updates, deletes) and reads (queries, gets) for ``seconds``; puts the
    ids whose last acknowledged write left them present (with their text) or deleted."""
    import time

    docs = isovec.connect(url).get_collection("docs")
    rng = np.random.default_rng(client)
    present, deleted = {}, set()
    i = 0
    end = time.time() + seconds
    while time.time() < end:
        action = rng.random()
        if action < 0.5:
            ids = [f"c{client}-{i + j}" for j in range(5)]
            texts = [text_of(client, i + j) for j in range(5)]
            assert docs.upsert(ids=ids, documents=texts, metadatas=[{"client": client}] * 5)["inserted"] == 5
            present.update(zip(ids, texts))
            i += 5
        elif action < 0.6 and present:
            victim = sorted(present)[int(rng.integers(len(present)))]
            assert docs.delete(ids=[victim]) == 1
            del present[victim]
            deleted.add(victim)
        elif action < 0.7 and present:
            some = sorted(present)[int(rng.integers(len(present)))]
            docs.update(ids=[some], metadatas=[{"touched": True}])
        else:
            r = docs.query(query_texts=["alpha things", "kilo about"], n_results=3, where={"client": client})
            assert all(len(ids) <= 3 for ids in r["ids"])
            for ids in r["ids"]:
                assert all(x.startswith(f"c{client}-") for x in ids), r["ids"]
    out.put((client, present, sorted(deleted)))


@pytest.fixture()
def served(isovec_bin, pipeline):
    store = tempfile.mkdtemp()
    server = Served(isovec_bin, store)
    yield store, server
    if server.process.poll() is None:
        server.stop()


def test_same_answers_through_both_transports(served, isovec_bin):
    store, server = served
    remote = isovec.connect(server.url)
    docs = remote.get_or_create_collection("docs")
    texts = ["Vaccines train the immune system.", "The puck slid across the ice.", "Bread rises in the oven."]
    assert docs.add(ids=["v", "h", "b"], documents=texts, metadatas=[{"t": "health"}, {"t": "sports"}, None]) == {
        "inserted": 3,
        "replaced": 0,
    }
    with pytest.raises(isovec.DuplicateIDError):
        docs.add(ids=["v"], documents=["again"])
    with pytest.raises(isovec.NotFoundError):
        remote.get_collection("nope")
    with pytest.raises(isovec.InvalidInputError, match="filter"):
        docs.query(query_texts=["x"], where="((((t=")
    mine = remote.get_or_create_collection("mine", dims=3, model="m")
    mine.add(ids=["a", "b"], embeddings=[[1, 0, 0], [0, 1, 0]], documents=["alpha", "beta"])
    with pytest.raises(isovec.DimensionError):
        mine.query(query_embeddings=[[1, 0]])
    asked = dict(query_texts=["how do vaccines work", "ice hockey"], n_results=2, include=("documents", "metadatas", "distances"))
    over_http = docs.query(**asked)
    got_http = docs.get(include=("documents", "metadatas", "embeddings"))
    mine_http = mine.query(query_embeddings=[[0.9, 0.1, 0]], n_results=2)
    export = os.path.join(tempfile.mkdtemp(), "export.parquet")
    assert docs.export_parquet(export) == 3
    server.stop()

    # The same store, embedded: the same answers.
    local = isovec.Store(store)
    docs_local = local.get_collection("docs")
    embedded = docs_local.query(**asked)
    assert over_http["ids"] == embedded["ids"] and over_http["ids"][0][0] == "v" and over_http["ids"][1][0] == "h"
    assert over_http["documents"] == embedded["documents"]
    assert over_http["metadatas"] == embedded["metadatas"]
    for a, b in zip(over_http["distances"], embedded["distances"]):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
    got_local = docs_local.get(include=("documents", "metadatas", "embeddings"))
    assert got_http["ids"] == got_local["ids"] and got_http["documents"] == got_local["documents"]
    np.testing.assert_array_equal(got_http["embeddings"], got_local["embeddings"])
    assert mine_http["ids"] == local.get_collection("mine").query(query_embeddings=[[0.9, 0.1, 0]], n_results=2)["ids"]
    local.close()


def test_a_locked_store_says_where_its_server_is(served):
    store, server = served
    with pytest.raises(isovec.StoreLockedError, match=server.url.replace(".", r"\.")):
        isovec.Store(store)


def test_four_client_processes_lose_no_acknowledged_write(served):
    store, server = served
    isovec.connect(server.url).get_or_create_collection("docs")
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    clients = [ctx.Process(target=client_run, args=(server.url, c, 8.0, out)) for c in range(4)]
    for p in clients:
        p.start()
    results = [out.get(timeout=300) for _ in clients]
    for p in clients:
        p.join(timeout=60)
        assert p.exitcode == 0, "a client process failed (its traceback is above)"
    docs = isovec.connect(server.url).get_collection("docs")
    present = {k: v for _, p, _ in results for k, v in p.items()}
    deleted = [d for _, _, ds in results for d in ds]
    assert len(present) > 100, f"only {len(present)} documents written by the clients"
    assert docs.count() == len(present)
    ids = sorted(present)
    got = docs.get(ids=ids)
    assert got["ids"] == ids and got["documents"] == [present[i] for i in ids]
    assert docs.get(ids=deleted)["ids"] == []
    # Every acknowledged document is found by its own words, in each mode.
    sample = ids[:: max(1, len(ids) // 40)]
    texts = [present[i] for i in sample]
    for mode in ("dense", "lexical", "hybrid"):
        r = docs.query(query_texts=texts, n_results=1, mode=mode)
        assert [hits[0] for hits in r["ids"]] == sample, mode


@pytest.mark.parametrize(
    "url", ["localhost:8750", "ftp://127.0.0.1:8750", "http://", "http://[::1", "http://127.0.0.1:99999", "http://h:port"]
)
def test_a_malformed_server_address_is_a_clear_error(url):
    with pytest.raises(isovec.InvalidInputError, match="http://127.0.0.1:8750"):
        isovec.connect(url)


def test_a_server_that_is_not_there_is_reported_as_unreachable():
    with pytest.raises(isovec.ServerUnreachableError):
        isovec.connect("http://127.0.0.1:9")

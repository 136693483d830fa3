"""Chroma's getting-started flow, in Chroma's words, against isovec — every result checked
against a brute-force computation in numpy — plus your own vectors and 8 threads querying while
one writes."""

import threading

import numpy as np
import pytest

import isovec

DOCS = {
    "v1": ("Vaccines train the immune system to fight infection.", {"topic": "health", "year": 2013}),
    "v2": ("Antibodies recognise viruses and bacteria.", {"topic": "health", "year": 2019}),
    "h1": ("The hockey puck slid across the ice.", {"topic": "sport", "year": 2015}),
    "h2": ("Goalkeepers in ice hockey wear heavy pads.", {"topic": "sport", "year": 2021}),
    "b1": ("Bread dough rises in a warm oven.", {"topic": "food", "year": 2020}),
    "b2": ("Sourdough needs a starter of wild yeast.", {"topic": "food", "year": 2011}),
}
QUERIES = ["how does the body fight viruses", "winter sports on ice", "baking bread at home"]


def brute_force(pipeline, docs, queries, k, keep=lambda meta: True):
    """The top k ids per query by cosine, computed here in f64 from the pipeline's vectors."""
    ids = [i for i in docs if keep(docs[i][1])]
    vectors = pipeline.embed([docs[i][0] for i in ids]).astype(np.float64)
    q = pipeline.embed_queries(queries).astype(np.float64)
    scores = q @ vectors.T
    order = np.argsort(-scores, axis=1)[:, :k]
    return [[ids[j] for j in row] for row in order], [scores[r, row] for r, row in enumerate(order)]


def test_chromas_getting_started_flow(pipeline, tmp_path):
    store = isovec.Store(tmp_path / "st")
    collection = store.get_or_create_collection("docs", pipeline)
    assert store.list_collections() == ["docs"]
    ids = list(DOCS)
    collection.add(ids=ids, documents=[DOCS[i][0] for i in ids], metadatas=[DOCS[i][1] for i in ids])
    assert collection.count() == 6
    with pytest.raises(isovec.DuplicateIDError, match="upsert"):
        collection.add(ids=["v1"], documents=["again"])

    # query: many texts in one call, the exact brute-force ranking and cosine distances.
    result = collection.query(query_texts=QUERIES, n_results=3, ef=64)
    truth, scores = brute_force(pipeline, DOCS, QUERIES, 3)
    assert result["ids"] == truth
    for got, want in zip(result["distances"], scores):
        np.testing.assert_allclose(got, 1.0 - want, atol=1e-5)
    assert result["documents"][0][0] == DOCS[truth[0][0]][0]
    assert result["metadatas"][0][0] == DOCS[truth[0][0]][1]

    # query with where, in Chroma's operators: brute force over the documents it allows.
    where = {"$and": [{"year": {"$gte": 2015}}, {"topic": {"$in": ["health", "sport"]}}]}
    keep = lambda m: m["year"] >= 2015 and m["topic"] in ("health", "sport")
    filtered = collection.query(query_texts=QUERIES, n_results=2, where=where)
    assert filtered["ids"] == brute_force(pipeline, DOCS, QUERIES, 2, keep)[0]
    assert collection.query(query_texts=QUERIES[:1], n_results=6, where={"topic": {"$nin": ["health"]}})["ids"][0] == [
        i for i in brute_force(pipeline, DOCS, QUERIES[:1], 6)[0][0] if DOCS[i][1]["topic"] != "health"
    ]

    # get: by ids (in that order), by where, paged; embeddings are the pipeline's vectors.
    got = collection.get(ids=["h2", "nope", "v1"], include=["documents", "metadatas", "embeddings"])
    assert got["ids"] == ["h2", "v1"]
    assert got["documents"] == [DOCS["h2"][0], DOCS["v1"][0]]
    np.testing.assert_allclose(got["embeddings"], pipeline.embed([DOCS["h2"][0], DOCS["v1"][0]]), atol=1e-6)
    food = collection.get(where={"topic": "food"})
    assert food["ids"] == ["b1", "b2"] and food["embeddings"] is None
    assert collection.get(limit=2, offset=1)["ids"] == sorted(DOCS)[1:3]
    assert collection.peek(limit=2)["embeddings"].shape == (2, 384)

    # update: a new text is encoded again; metadata merge.
    collection.update(ids=["b2"], documents=["Ice skating on a frozen lake."], metadatas=[{"topic": "sport"}])
    docs = dict(DOCS, b2=("Ice skating on a frozen lake.", {"topic": "sport", "year": 2011}))
    assert collection.get(ids=["b2"])["metadatas"] == [docs["b2"][1]]
    assert collection.query(query_texts=QUERIES, n_results=3)["ids"] == brute_force(pipeline, docs, QUERIES, 3)[0]
    with pytest.raises(isovec.InvalidInputError, match="no document with id"):
        collection.update(ids=["nope"], metadatas=[{"a": 1}])

    # upsert replaces, delete by ids and by where.
    collection.upsert(ids=["v1"], documents=["Vaccines prevent measles."], metadatas=[{"topic": "health", "year": 2024}])
    docs["v1"] = ("Vaccines prevent measles.", {"topic": "health", "year": 2024})
    assert collection.delete(ids=["h1", "nope"]) == 1
    del docs["h1"]
    assert collection.delete(where={"year": {"$lt": 2012}}) == 1
    del docs["b2"]
    assert collection.count() == len(docs) == 4
    assert collection.query(query_texts=QUERIES, n_results=3)["ids"] == brute_force(pipeline, docs, QUERIES, 3)[0]

    # The store's collections.
    with pytest.raises(isovec.NotFoundError):
        store.get_collection("missing")
    assert store.get_collection("docs").count() == 4
    store.delete_collection("docs")
    assert store.list_collections() == []


def test_your_own_vectors(tmp_path):
    rng = np.random.default_rng(7)
    vectors = rng.normal(size=(200, 16)).astype(np.float32)
    texts = [f"item {i} {'red' if i % 2 else 'blue'}" for i in range(200)]
    store = isovec.Store(tmp_path / "st")
    mine = store.get_or_create_collection("mine", dims=16, model="random-16")
    assert mine.external and mine.pipeline_spec["vectors"] == {"source": "external", "name": "random-16", "dims": 16}
    mine.add(ids=[f"i{i}" for i in range(200)], embeddings=vectors, documents=texts, metadatas=[{"n": i} for i in range(200)])
    queries = rng.normal(size=(5, 16)).astype(np.float32)
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    cos = (queries / np.linalg.norm(queries, axis=1, keepdims=True)) @ unit.T
    truth = [[f"i{j}" for j in row] for row in np.argsort(-cos, axis=1)[:, :5]]
    assert mine.query(query_embeddings=queries, n_results=5, mode="exact")["ids"] == truth
    assert mine.query(query_embeddings=queries, n_results=5, ef=400)["ids"] == truth
    # Lexical on the texts, and hybrid with each query's vector and text.
    assert len(mine.query(query_texts=["red"], mode="lexical", n_results=500)["ids"][0]) == 100
    hybrid = mine.query(query_texts=["red"] * 5, query_embeddings=queries, mode="hybrid", n_results=3)
    assert len(hybrid["ids"]) == 5 and hybrid["distances"] is None
    # The fusion weight reaches the store: all of it on the dense side is the dense ranking.
    dense_side = mine.query(query_texts=["red"] * 5, query_embeddings=queries, mode="hybrid", n_results=3, alpha=1.0)
    assert dense_side["ids"] == [t[:3] for t in truth]
    # alpha="auto" is the fusion isovec advise chose: none yet, and the error says so.
    with pytest.raises(isovec.InvalidInputError, match="isovec advise"):
        mine.query(query_texts=["red"], query_embeddings=queries[:1], mode="hybrid", alpha="auto")
    with pytest.raises(isovec.InvalidInputError, match="'auto'"):
        mine.search("red", mode="hybrid", alpha="most")
    # Wrong dimension, texts it cannot encode: clear errors, nothing written.
    with pytest.raises(isovec.DimensionError, match="expected 16"):
        mine.add(ids=["x"], embeddings=np.zeros((1, 8)))
    with pytest.raises(isovec.InvalidInputError, match="outside isovec"):
        mine.add(ids=["x"], documents=["a text"])
    with pytest.raises(isovec.InvalidInputError, match="outside isovec"):
        mine.query(query_texts=["red"])
    assert mine.count() == 200
    with pytest.raises(isovec.InvalidInputError, match="random-16"):
        store.get_or_create_collection("mine", dims=16, model="another")


def test_eight_threads_query_while_one_writes(pipeline, tmp_path):
    store = isovec.Store(tmp_path / "st")
    c = store.get_or_create_collection("docs", pipeline)
    ids = list(DOCS)
    c.add(ids=ids, documents=[DOCS[i][0] for i in ids], metadatas=[DOCS[i][1] for i in ids])
    expected = c.query(query_texts=QUERIES, n_results=2)["ids"]
    errors, stop = [], threading.Event()

    def reader():
        try:
            while not stop.is_set():
                # The original documents outrank the writer's (about other things) throughout.
                assert c.query(query_texts=QUERIES, n_results=2)["ids"] == expected
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    def writer():
        try:
            for n in range(40):
                c.upsert(ids=[f"w{n}"], documents=[f"Notes on tax form {n} for small companies."])
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    readers = [threading.Thread(target=reader) for _ in range(8)]
    for t in readers:
        t.start()
    w = threading.Thread(target=writer)
    w.start()
    w.join()
    stop.set()
    for t in readers:
        t.join()
    assert errors == []
    assert c.count() == len(DOCS) + 40

"""isovec.langchain: LangChain's standard vector-store suite (langchain-tests, sync and async,
with its fake 6-dimensional embeddings: a collection of vectors isovec did not make), and the
store with isovec's own pipeline."""

import numpy as np
import pytest
from langchain_core.documents import Document
from langchain_tests.integration_tests import VectorStoreIntegrationTests

import isovec
from isovec.langchain import IsovecEmbeddings, IsovecVectorStore


class TestIsovecStandardSuite(VectorStoreIntegrationTests):
    @pytest.fixture()
    def vectorstore(self, tmp_path):
        store = isovec.Store(tmp_path / "lc")
        yield IsovecVectorStore(store=store, embedding=self.get_embeddings())


TEXTS = [
    "Vaccines train the immune system to fight infection.",
    "The hockey puck slid across the ice.",
    "Antibodies recognise viruses and bacteria.",
    "Goalkeepers in ice hockey wear heavy pads.",
    "Bread dough rises in a warm oven.",
]
METAS = [{"topic": "health"}, {"topic": "sport"}, {"topic": "health"}, {"topic": "sport"}, {"topic": "food"}]


@pytest.fixture()
def own(pipeline, tmp_path):
    return IsovecVectorStore.from_texts(
        TEXTS, metadatas=METAS, ids=[f"t{i}" for i in range(5)], path=str(tmp_path / "own"), pipeline=pipeline
    )


def test_isovecs_pipeline_scores_filters_and_reopens(own, pipeline, tmp_path):
    query = "how does the body fight viruses"
    hits = own.similarity_search_with_score(query, k=5)
    q = pipeline.embed_queries([query])[0].astype(np.float64)
    vectors = pipeline.embed(TEXTS).astype(np.float64)
    truth = np.argsort(-(vectors @ q))
    assert [d.id for d, _ in hits] == [f"t{i}" for i in truth]
    assert [s for _, s in hits] == pytest.approx(sorted(vectors @ q, reverse=True), abs=1e-5)
    assert hits[0][0].metadata == METAS[truth[0]]
    assert {d.id for d in own.similarity_search(query, k=5, filter={"topic": "sport"})} == {"t1", "t3"}
    assert {d.id for d in own.similarity_search(query, k=5, filter="topic IN (food, sport)")} == {"t1", "t3", "t4"}
    # The embeddings LangChain sees are isovec's pipeline.
    assert np.allclose(own.embeddings.embed_query(query), q, atol=1e-6)
    # The collection recorded its pipeline: a new store object needs nothing else.
    own.close()
    again = IsovecVectorStore(str(tmp_path / "own"))
    assert [d.id for d in again.similarity_search(query, k=2)] == [f"t{i}" for i in truth[:2]]


def test_mmr_trades_nearness_for_diversity(own, pipeline):
    query = "ice hockey"
    near = [d.id for d in own.similarity_search(query, k=2)]
    assert set(near) == {"t1", "t3"}
    diverse = [d.id for d in own.max_marginal_relevance_search(query, k=2, fetch_k=5, lambda_mult=0.1)]
    assert diverse[0] in near and diverse[1] not in near
    # lambda 1: nearness only, as the plain search.
    assert [d.id for d in own.max_marginal_relevance_search(query, k=2, fetch_k=5, lambda_mult=1.0)] == near


def test_hybrid_and_lexical_search_types_and_retrievers(own):
    assert [d.id for d in own.search("puck", "lexical", k=3)] == ["t1"]
    assert own.search("goalkeepers pads", "hybrid", k=1)[0].id == "t3"
    retriever = own.as_retriever(search_type="hybrid", search_kwargs={"k": 2, "filter": {"topic": "health"}})
    assert {d.id for d in retriever.invoke("immune antibodies")} == {"t0", "t2"}
    assert [d.id for d in own.as_retriever(search_type="lexical").invoke("bread")] == ["t4"]
    with pytest.raises(ValueError, match="search_type"):
        own.as_retriever(search_type="nonsense")


def test_delete_by_ids_and_get_by_ids(own):
    assert own.delete(["t0", "missing"])
    assert [d.id for d in own.get_by_ids(["t0", "t1"])] == ["t1"]
    assert own.get_by_ids(["t1"])[0] == Document(id="t1", page_content=TEXTS[1], metadata=METAS[1])
    own.delete()
    assert own.similarity_search("anything", k=3) == []


def test_isovec_embeddings_are_the_pipelines(pipeline):
    e = IsovecEmbeddings(pipeline)
    assert np.allclose(e.embed_documents(TEXTS[:2]), pipeline.embed(TEXTS[:2]), atol=1e-7)
    assert np.allclose(e.embed_query(TEXTS[0]), pipeline.embed_queries(TEXTS[:1])[0], atol=1e-7)

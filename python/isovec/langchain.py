"""isovec as a LangChain vector store (``IsovecVectorStore``) and isovec's encoder as LangChain
``Embeddings`` (``IsovecEmbeddings``). Needs ``langchain-core``.

The store encodes with isovec's own pipeline (the collection's recorded one, or the one given),
or with any LangChain ``Embeddings``, whose vectors it keeps as they are (a collection of
"your own vectors", named after the embeddings' class). Scores are cosine similarities (higher
is better) in dense search; ``search_type="hybrid"`` or ``"lexical"`` (also as a retriever's
``search_type``) fuse in, or use only, BM25 on the texts.

>>> from isovec.langchain import IsovecVectorStore
>>> vs = IsovecVectorStore("lc-store")
>>> vs.add_texts(["Vaccines train the immune system.", "The puck slid across the ice."], ids=["v", "h"])
['v', 'h']
>>> [d.id for d in vs.similarity_search("how do vaccines work", k=1)]
['v']
>>> [d.id for d in vs.as_retriever(search_type="hybrid", search_kwargs={"k": 1}).invoke("ice hockey")]
['h']
"""

from __future__ import annotations

import uuid
from typing import Any, Callable, ClassVar, Collection as Kinds, Iterable, List, Optional, Sequence, Tuple, Type

import numpy as np
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.runnables.config import run_in_executor
from langchain_core.vectorstores import VectorStore, VectorStoreRetriever
from langchain_core.vectorstores.utils import maximal_marginal_relevance

from ._collection import Collection, Where
from ._pipeline import Pipeline
from ._store import Store
from .errors import InvalidInputError

#: The search types of ``IsovecVectorStore.search`` and its retrievers.
SEARCH_TYPES = ("similarity", "similarity_score_threshold", "mmr", "hybrid", "lexical")


class IsovecEmbeddings(Embeddings):
    """isovec's encoder as LangChain ``Embeddings``: an ``isovec.Pipeline`` (made from
    ``pipeline_kwargs`` when not given, e.g. ``pooling="cls"``), or a collection's own."""

    def __init__(self, pipeline: Optional[Pipeline | Collection] = None, **pipeline_kwargs: Any) -> None:
        if pipeline is not None and pipeline_kwargs:
            raise InvalidInputError("give a pipeline, or the arguments to make one, not both")
        self.pipeline = pipeline if pipeline is not None else Pipeline(**pipeline_kwargs)

    def embed_documents(self, texts: List[str]) -> List[List[float]]:
        return self.pipeline.embed(list(texts)).tolist()

    def embed_query(self, text: str) -> List[float]:
        return self.pipeline.embed_queries([text])[0].tolist()


class IsovecVectorStore(VectorStore):
    """A collection of an isovec store as a LangChain ``VectorStore``.

    ``path`` (or an open ``store``), ``collection_name``; then either ``embedding``, any
    LangChain ``Embeddings`` (its vectors are stored as given), or isovec's own pipeline:
    ``pipeline`` for a new collection, else the collection's recorded one (the default model
    for a new one). ``filter`` arguments take isovec's expression or a dict with isovec's or
    Chroma's operators.
    """

    def __init__(
        self,
        path: Optional[str] = None,
        collection_name: str = "langchain",
        embedding: Optional[Embeddings] = None,
        *,
        store: Optional[Store] = None,
        pipeline: Optional[Pipeline] = None,
    ) -> None:
        if (path is None) == (store is None):
            raise InvalidInputError("give the store's path or an open store (store=), one of them")
        self._owns_store = store is None
        self._store = store if store is not None else Store(path)
        self._name = collection_name
        self._embedding = embedding
        if isinstance(embedding, IsovecEmbeddings) and isinstance(embedding.pipeline, Pipeline):
            pipeline, self._embedding = embedding.pipeline, None
        self._collection: Optional[Collection] = None
        if self._embedding is None:
            self._collection = self._store.get_or_create_collection(collection_name, pipeline)
        elif collection_name in self._store.list_collections():
            self._collection = self._store.get_collection(collection_name)

    def close(self) -> None:
        """Lets go of the collection, and closes the store if this object opened it (``path``)."""
        self._collection = None
        if self._owns_store:
            self._store.close()

    @property
    def collection(self) -> Optional[Collection]:
        """The isovec collection (None until the first texts of an ``embedding`` store arrive)."""
        return self._collection

    @property
    def embeddings(self) -> Optional[Embeddings]:
        if self._embedding is not None:
            return self._embedding
        return IsovecEmbeddings(self._collection)

    # Writing.

    def add_texts(
        self,
        texts: Iterable[str],
        metadatas: Optional[List[dict]] = None,
        *,
        ids: Optional[List[Optional[str]]] = None,
        **kwargs: Any,
    ) -> List[str]:
        """Adds texts (replacing those whose id exists); returns their ids, new uuids for those
        without one."""
        texts = list(texts)
        ids = [i if i else str(uuid.uuid4()) for i in (ids or [None] * len(texts))]
        if len(ids) != len(texts):
            raise InvalidInputError(f"{len(texts)} texts and {len(ids)} ids: give one id per text")
        if not texts:
            return []
        metadatas = None if metadatas is None else [m or None for m in metadatas]
        if self._embedding is None:
            self._collection.upsert(ids, documents=texts, metadatas=metadatas)
        else:
            vectors = np.asarray(self._embedding.embed_documents(texts), dtype=np.float32)
            self._external(vectors.shape[1]).upsert(ids, documents=texts, embeddings=vectors, metadatas=metadatas)
        return ids

    def _external(self, dims: int) -> Collection:
        if self._collection is None:
            model = type(self._embedding).__name__
            self._collection = self._store.get_or_create_collection(self._name, dims=dims, model=model)
        return self._collection

    def delete(self, ids: Optional[List[str]] = None, **kwargs: Any) -> Optional[bool]:
        """Deletes the documents with ``ids`` (missing ones are no error); every document
        without ``ids``, or those a ``filter=`` keyword allows."""
        if self._collection is None:
            return True
        where = kwargs.get("filter")
        if ids is None and where is None:
            where = {}
        self._collection.delete(ids=ids, where=where)
        return True

    # Reading.

    def get_by_ids(self, ids: Sequence[str], /) -> List[Document]:
        if self._collection is None:
            return []
        got = self._collection.get(ids=list(ids))
        return [
            Document(id=i, page_content=t, metadata=m or {})
            for i, t, m in zip(got["ids"], got["documents"], got["metadatas"])
        ]

    def _query(
        self,
        query: Optional[str],
        vector: Optional[Sequence[float]],
        k: int,
        filter: Optional[Where],
        mode: str,
        include: Tuple[str, ...] = ("documents", "metadatas", "scores"),
    ) -> dict:
        if self._collection is None or k <= 0:
            return {"ids": [[]], "documents": [[]], "metadatas": [[]], "scores": [[]], "embeddings": [np.zeros((0, 0))]}
        if vector is None and self._embedding is not None and mode != "lexical":
            vector = self._embedding.embed_query(query)
        return self._collection.query(
            query_texts=None if query is None else [query],
            query_embeddings=None if vector is None else [vector],
            n_results=k,
            where=filter,
            mode=mode,
            include=include,
        )

    @staticmethod
    def _documents(result: dict) -> List[Tuple[Document, float]]:
        return [
            (Document(id=i, page_content=t, metadata=m or {}), float(s))
            for i, t, m, s in zip(result["ids"][0], result["documents"][0], result["metadatas"][0], result["scores"][0])
        ]

    def similarity_search_with_score(
        self, query: str, k: int = 4, filter: Optional[Where] = None, mode: str = "dense", **kwargs: Any
    ) -> List[Tuple[Document, float]]:
        """The ``k`` best documents for ``query`` with their scores (cosine similarity in
        dense mode); ``mode``: dense, hybrid or lexical."""
        return self._documents(self._query(query, None, k, filter, mode))

    def similarity_search(
        self, query: str, k: int = 4, filter: Optional[Where] = None, mode: str = "dense", **kwargs: Any
    ) -> List[Document]:
        return [d for d, _ in self.similarity_search_with_score(query, k, filter, mode)]

    def similarity_search_by_vector(
        self, embedding: List[float], k: int = 4, filter: Optional[Where] = None, **kwargs: Any
    ) -> List[Document]:
        return [d for d, _ in self._documents(self._query(None, embedding, k, filter, "dense"))]

    def _select_relevance_score_fn(self) -> Callable[[float], float]:
        # Scores are cosine similarities already: 1 - cosine distance.
        return lambda score: score

    def max_marginal_relevance_search(
        self,
        query: str,
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        filter: Optional[Where] = None,
        **kwargs: Any,
    ) -> List[Document]:
        if self._collection is None:
            return []
        return self.max_marginal_relevance_search_by_vector(
            self.embeddings.embed_query(query), k, fetch_k, lambda_mult, filter
        )

    def max_marginal_relevance_search_by_vector(
        self,
        embedding: List[float],
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        filter: Optional[Where] = None,
        **kwargs: Any,
    ) -> List[Document]:
        """``k`` documents among the ``fetch_k`` nearest that are near the query and far from
        each other (``lambda_mult``: 1 only near, 0 only diverse)."""
        result = self._query(
            None, embedding, max(fetch_k, k), filter, "dense", ("documents", "metadatas", "scores", "embeddings")
        )
        candidates = self._documents(result)
        if not candidates:
            return []
        chosen = maximal_marginal_relevance(
            np.asarray(embedding, dtype=np.float32), result["embeddings"][0], lambda_mult=lambda_mult, k=k
        )
        return [candidates[i][0] for i in chosen]

    def search(self, query: str, search_type: str, **kwargs: Any) -> List[Document]:
        """LangChain's search types, and ``hybrid`` and ``lexical``."""
        if search_type in ("hybrid", "lexical"):
            return self.similarity_search(query, mode=search_type, **kwargs)
        return super().search(query, search_type, **kwargs)

    def as_retriever(self, **kwargs: Any) -> "IsovecRetriever":
        tags = kwargs.pop("tags", None) or [*self._get_retriever_tags()]
        return IsovecRetriever(vectorstore=self, tags=tags, **kwargs)

    @classmethod
    def from_texts(
        cls: Type["IsovecVectorStore"],
        texts: List[str],
        embedding: Optional[Embeddings] = None,
        metadatas: Optional[List[dict]] = None,
        *,
        ids: Optional[List[str]] = None,
        path: Optional[str] = None,
        collection_name: str = "langchain",
        store: Optional[Store] = None,
        pipeline: Optional[Pipeline] = None,
        **kwargs: Any,
    ) -> "IsovecVectorStore":
        vs = cls(path, collection_name, embedding, store=store, pipeline=pipeline)
        vs.add_texts(texts, metadatas, ids=ids)
        return vs


class IsovecRetriever(VectorStoreRetriever):
    """A retriever of an ``IsovecVectorStore``: LangChain's search types, ``hybrid`` and
    ``lexical``."""

    allowed_search_types: ClassVar[Kinds[str]] = SEARCH_TYPES

    def _get_relevant_documents(self, query: str, *, run_manager: Any, **kwargs: Any) -> List[Document]:
        if self.search_type in ("hybrid", "lexical"):
            return self.vectorstore.search(query, self.search_type, **(self.search_kwargs | kwargs))
        return super()._get_relevant_documents(query, run_manager=run_manager, **kwargs)

    async def _aget_relevant_documents(self, query: str, *, run_manager: Any, **kwargs: Any) -> List[Document]:
        if self.search_type in ("hybrid", "lexical"):
            arguments = self.search_kwargs | kwargs
            return await run_in_executor(None, lambda: self.vectorstore.search(query, self.search_type, **arguments))
        return await super()._aget_relevant_documents(query, run_manager=run_manager, **kwargs)


__all__ = ["IsovecVectorStore", "IsovecEmbeddings", "IsovecRetriever", "SEARCH_TYPES"]

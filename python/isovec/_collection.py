"""``Collection``: a store's documents, in Chroma's words (add, upsert, update, get, query,
delete, peek, count), with the pipeline that encodes them or your own vectors."""

from __future__ import annotations

import json
from os import PathLike
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from .errors import InvalidInputError

#: A metadata filter: isovec's expression (``"lang=en AND year>=2020"``) or a dict, with isovec's
#: or Chroma's operators (``{"year": {"$gte": 2020}}``, ``{"$or": [...]}``).
Where = Union[str, Mapping[str, Any]]
OneOrMany = Union[str, Sequence[str]]
Vectors = Union[np.ndarray, Sequence[Sequence[float]]]

#: What ``get`` and ``query`` may return besides ids.
INCLUDABLE = ("documents", "metadatas", "embeddings", "distances", "scores")


def _list(values: Optional[OneOrMany]) -> Optional[List[str]]:
    if values is None:
        return None
    return [values] if isinstance(values, str) else list(values)


def _fusion(fusion: Optional[str], alpha: Union[float, str, None]) -> Tuple[Optional[str], Optional[float]]:
    """``fusion`` and ``alpha`` as the store takes them: ``alpha="auto"`` is ``fusion="auto"``,
    the fusion ``isovec advise`` chose for the collection."""
    if isinstance(alpha, str):
        if alpha.strip() != "auto":
            raise InvalidInputError(f"alpha={alpha!r}: give the dense side's weight in [0, 1], or 'auto'")
        if fusion not in (None, "auto", "convex"):
            raise InvalidInputError(f"alpha='auto' takes the fusion isovec advise chose; leave out fusion={fusion!r}")
        return "auto", None
    return fusion, None if alpha is None else float(alpha)


def _where(where: Optional[Where]) -> Optional[str]:
    if where is None or isinstance(where, str):
        return where
    return json.dumps(where)


def _vectors(vectors: Optional[Vectors], what: str) -> Tuple[Optional[bytes], int, int]:
    """(little-endian float32 bytes, rows, dims) of a 2-D array (a 1-D one is one row)."""
    if vectors is None:
        return None, 0, 0
    array = np.asarray(vectors, dtype="<f4")
    if array.ndim == 1:
        array = array.reshape(1, -1)
    if array.ndim != 2:
        raise InvalidInputError(f"{what}: give a 2-D array (one row per item), got {array.ndim} dimensions")
    return np.ascontiguousarray(array).tobytes(), array.shape[0], array.shape[1]


def _metadatas(metadatas: Optional[Sequence[Optional[Mapping[str, Any]]]]) -> Optional[List[Optional[str]]]:
    if metadatas is None:
        return None
    if isinstance(metadatas, Mapping):
        metadatas = [metadatas]
    return [None if m is None else json.dumps(m) for m in metadatas]


def _include(include: Sequence[str]) -> set:
    unknown = [i for i in include if i not in INCLUDABLE]
    if unknown:
        raise InvalidInputError(f"include: unknown {unknown}; choose among {list(INCLUDABLE)}")
    return set(include)


def _query_result(collection, ids, scores, documents, metadatas, wanted: set, mode: str) -> Dict[str, Any]:
    """``query``'s dict of lists (one entry per query) from the hits' parts; the embedded and the
    HTTP collection answer with it."""
    scores = [np.asarray(s, dtype=np.float32) for s in scores]
    return {
        "ids": ids,
        "documents": documents if "documents" in wanted else None,
        "metadatas": metadatas if "metadatas" in wanted else None,
        "scores": scores if "scores" in wanted else None,
        "distances": [1.0 - s for s in scores] if "distances" in wanted and mode in ("dense", "exact") else None,
        "embeddings": (
            [collection.get(ids=i, include=("embeddings",))["embeddings"] for i in ids] if "embeddings" in wanted else None
        ),
    }


class Collection:
    """Documents of a store with the pipeline that encodes their texts and queries (the
    collection's own), or vectors made outside isovec (``external``)."""

    def __init__(self, native: Any) -> None:
        self._native = native

    @property
    def name(self) -> str:
        """The collection's name."""
        return self._native.name

    @property
    def dims(self) -> int:
        """Number of dimensions of its vectors."""
        return self._native.dims

    @property
    def external(self) -> bool:
        """Whether it holds vectors made outside isovec (given with ``embeddings=``)."""
        return self._native.external

    @property
    def pipeline_spec(self) -> Optional[Dict[str, Any]]:
        """The record of the pipeline that makes its vectors (None without one)."""
        spec = self._native.spec()
        return None if spec is None else json.loads(spec)

    def add(
        self,
        ids: OneOrMany,
        documents: Optional[OneOrMany] = None,
        embeddings: Optional[Vectors] = None,
        metadatas: Optional[Sequence[Optional[Mapping[str, Any]]]] = None,
    ) -> Dict[str, int]:
        """Adds new documents (an id the collection has is a ``DuplicateIDError``; use
        ``upsert`` to replace). Without ``embeddings``, the pipeline encodes ``documents``; with
        them (one row per id), documents are optional texts for lexical search. Returns counts.
        """
        return self._write("add", ids, documents, embeddings, metadatas)

    def upsert(
        self,
        ids: OneOrMany,
        documents: Optional[OneOrMany] = None,
        embeddings: Optional[Vectors] = None,
        metadatas: Optional[Sequence[Optional[Mapping[str, Any]]]] = None,
    ) -> Dict[str, int]:
        """Adds documents, or replaces those whose id exists (text, vector and metadata)."""
        return self._write("upsert", ids, documents, embeddings, metadatas)

    def update(
        self,
        ids: OneOrMany,
        documents: Optional[OneOrMany] = None,
        embeddings: Optional[Vectors] = None,
        metadatas: Optional[Sequence[Optional[Mapping[str, Any]]]] = None,
    ) -> Dict[str, int]:
        """Changes existing documents (a missing id is an error and changes nothing): a new
        document text is encoded again (or takes the embedding given); metadata are merged
        key by key, a key set to None is removed."""
        return self._write("update", ids, documents, embeddings, metadatas)

    def _write(self, mode, ids, documents, embeddings, metadatas) -> Dict[str, int]:
        ids = _list(ids)
        documents = _list(documents)
        data, rows, dims = _vectors(embeddings, "embeddings")
        if data is not None and rows != len(ids):
            raise InvalidInputError(f"{len(ids)} ids and {rows} embeddings: give one per id")
        inserted, replaced = self._native.write(mode, ids, documents, data, dims, _metadatas(metadatas))
        return {"inserted": inserted, "replaced": replaced}

    def get(
        self,
        ids: Optional[OneOrMany] = None,
        where: Optional[Where] = None,
        limit: Optional[int] = None,
        offset: Optional[int] = None,
        include: Sequence[str] = ("documents", "metadatas"),
    ) -> Dict[str, Any]:
        """Documents by ``ids`` (in that order; missing ids are left out) or all (in id order),
        those ``where`` allows, from ``offset``, at most ``limit``. Returns a dict of lists:
        ``ids``, and ``documents``, ``metadatas`` and ``embeddings`` (a float32 array, one row
        per document) when in ``include``."""
        wanted = _include(include)
        rows, data = self._native.get(_list(ids), _where(where), offset or 0, limit, "embeddings" in wanted)
        out: Dict[str, Any] = {"ids": [r[0] for r in rows]}
        out["documents"] = [r[1] for r in rows] if "documents" in wanted else None
        out["metadatas"] = [None if r[2] is None else json.loads(r[2]) for r in rows] if "metadatas" in wanted else None
        out["embeddings"] = (
            np.frombuffer(data, dtype="<f4").reshape(len(rows), self.dims).copy() if "embeddings" in wanted else None
        )
        return out

    def peek(self, limit: int = 10) -> Dict[str, Any]:
        """The first ``limit`` documents (in id order) with their embeddings."""
        return self.get(limit=limit, include=("documents", "metadatas", "embeddings"))

    def delete(self, ids: Optional[OneOrMany] = None, where: Optional[Where] = None) -> int:
        """Deletes the documents with ``ids`` that ``where`` allows (either may be left out,
        not both; ``where={}`` allows every document). Missing ids are no error. Returns how
        many were deleted."""
        return self._native.delete(_list(ids), _where(where))

    def query(
        self,
        query_texts: Optional[OneOrMany] = None,
        query_embeddings: Optional[Vectors] = None,
        n_results: int = 10,
        where: Optional[Where] = None,
        mode: str = "dense",
        ef: Optional[int] = None,
        include: Sequence[str] = ("documents", "metadatas", "distances"),
        fusion: Optional[str] = None,
        alpha: Union[float, str, None] = None,
    ) -> Dict[str, Any]:
        """The ``n_results`` best documents for each query, many queries in one call (texts
        encoded together, searched in parallel). Give ``query_texts`` (encoded by the
        collection's pipeline), ``query_embeddings``, or both for a hybrid search of your own
        vectors. ``mode``: dense, lexical (BM25 on the texts), hybrid (both, fused), or exact
        (every vector scanned, no ``where``); ``ef``: the HNSW candidate list width. A hybrid
        search fuses by ``fusion`` (``convex``, the default, ``rrf``, or ``auto``) with the dense
        side's weight ``alpha`` (default 0.5); ``alpha="auto"`` uses the fusion ``isovec advise``
        chose for the collection on its own texts.

        Returns a dict of lists with one entry per query: ``ids``, and when in ``include``:
        ``documents``, ``metadatas``, ``scores`` (float32 arrays: cosine similarity in dense
        and exact modes, the fused or BM25 score otherwise), ``distances`` (``1 - cosine``,
        dense and exact modes only) and ``embeddings`` (float32 arrays, a row per hit)."""
        wanted = _include(include)
        texts = _list(query_texts)
        data, rows, dims = _vectors(query_embeddings, "query_embeddings")
        if texts is None and data is None:
            raise InvalidInputError("query: give query_texts or query_embeddings")
        results = self._native.query(texts, data, rows, dims, n_results, _where(where), mode, ef, *_fusion(fusion, alpha))
        return _query_result(
            self,
            [[h[0] for h in hits] for hits in results],
            [[h[1] for h in hits] for hits in results],
            [[h[2] for h in hits] for hits in results],
            [[None if h[3] is None else json.loads(h[3]) for h in hits] for hits in results],
            wanted,
            mode,
        )

    def search(
        self,
        text: str,
        k: int = 10,
        filter: Optional[Where] = None,
        mode: str = "dense",
        ef: Optional[int] = None,
        fusion: Optional[str] = None,
        alpha: Union[float, str, None] = None,
    ) -> List[Dict[str, Any]]:
        """The ``k`` best documents for one query ``text``, best first, as dicts with id, score,
        text and metadata (``query`` answers many at once). ``filter``: as ``where``; ``fusion``
        and ``alpha``: as in ``query``."""
        hits = self._native.query([text], None, 0, 0, k, _where(filter), mode, ef, *_fusion(fusion, alpha))[0]
        return [
            {"id": i, "score": s, "text": t, "metadata": None if m is None else json.loads(m)} for i, s, t, m in hits
        ]

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """The vectors of documents ``texts`` as this collection's pipeline makes them (float32,
        one row per text); a collection of your own vectors has no pipeline (an error)."""
        return self._vectors(texts, queries=False)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Like ``embed``, for queries (with the pipeline's query prefix)."""
        return self._vectors(texts, queries=True)

    def _vectors(self, texts: Sequence[str], queries: bool) -> np.ndarray:
        texts = [texts] if isinstance(texts, str) else list(texts)
        data = self._native.embed_bytes(texts, queries)
        return np.frombuffer(data, dtype="<f4").reshape(len(texts), self.dims).copy()

    def count(self) -> int:
        """Number of documents."""
        return self._native.count()

    def export_parquet(self, path: Union[str, "PathLike[str]"]) -> int:
        """Writes the collection to a Parquet file (see ``isovec export``); returns its rows."""
        return self._native.export_parquet(str(path))

    def __len__(self) -> int:
        return self.count()

    def __repr__(self) -> str:
        return f"Collection(name={self.name!r}, dims={self.dims}, external={self.external})"

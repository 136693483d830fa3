"""``Pipeline``: texts to vectors, as ``isovec embed`` makes them."""

from __future__ import annotations

from os import PathLike
from typing import Optional, Sequence, Union

import numpy as np

from . import _native

StrPath = Union[str, "PathLike[str]"]


class Pipeline:
    """Encoder + pooling + prefixes + optional fitted transform + L2 normalisation.

    ``model_dir``: a Hugging Face BERT folder (default: the model ``isovec model fetch``
    installed); ``pooling``: mean, cls, cls_before_pooler, first_last_avg, ...; ``transform``: a
    file written by ``isovec fit whiten|flow``; ``dtype``: f32, or as ``--dtype`` takes it (bf16;
    int8: the dense layers' products in 8-bit integers on a CPU with AVX2, faster, scores 0.2
    points lower); ``max_length``: the longest input in tokens; ``query_prefix`` and
    ``document_prefix``: texts put before queries and documents (as E5 models expect). A part
    left out (None) is the default (mean pooling, the model's maximum length, no prefix), or,
    with a transform, what the transform was fitted with.

    >>> pipeline = Pipeline(max_length=128)
    >>> pipeline.embed(["a sentence", "another one"]).shape
    (2, 384)
    """

    def __init__(
        self,
        model_dir: Optional[StrPath] = None,
        pooling: Optional[str] = None,
        transform: Optional[StrPath] = None,
        dtype: str = "f32",
        max_length: Optional[int] = None,
        query_prefix: Optional[str] = None,
        document_prefix: Optional[str] = None,
    ) -> None:
        self._native = _native.Pipeline(
            None if model_dir is None else str(model_dir),
            pooling,
            None if transform is None else str(transform),
            dtype,
            max_length,
            query_prefix,
            document_prefix,
        )

    @property
    def dims(self) -> int:
        """Number of dimensions of each vector."""
        return self._native.dims

    @property
    def id(self) -> str:
        """The pipeline id as JSON text: write it as ``isovec.pipeline`` in a Parquet file's
        key-value metadata so ``isovec import`` takes the vectors as they are."""
        return self._native.id

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """The vectors of documents ``texts``: a float32 array of shape (len, dims)."""
        return self._vectors(texts, queries=False)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """The vectors of queries ``texts``, with the query prefix: what a search compares with
        the documents' vectors. Without prefixes, the same as ``embed``."""
        return self._vectors(texts, queries=True)

    def _vectors(self, texts: Sequence[str], queries: bool) -> np.ndarray:
        texts = [texts] if isinstance(texts, str) else list(texts)
        data = self._native.embed_bytes(texts, queries)
        return np.frombuffer(data, dtype="<f4").reshape(len(texts), self.dims).copy()

# Type stubs of the Rust extension isovec._native (python/src); the package's modules wrap it.
from typing import List, Optional, Tuple

TUNING_ENV: str

def tune_process() -> bool: ...

class Pipeline:
    def __init__(
        self,
        model_dir: Optional[str] = None,
        pooling: Optional[str] = None,
        transform: Optional[str] = None,
        dtype: str = "f32",
        max_length: Optional[int] = None,
        query_prefix: Optional[str] = None,
        document_prefix: Optional[str] = None,
    ) -> None: ...
    @property
    def dims(self) -> int: ...
    @property
    def id(self) -> str: ...
    def embed_bytes(self, texts: List[str], queries: bool = False) -> bytes: ...

class Store:
    def __init__(self, path: str, dtype: str = "f32") -> None: ...
    def collection(
        self,
        name: str,
        pipeline: Optional[Pipeline] = None,
        external: Optional[Tuple[str, int]] = None,
        create: bool = True,
        new_only: bool = False,
    ) -> Collection: ...
    def list_collections(self) -> List[str]: ...
    def delete_collection(self, name: str) -> None: ...
    def import_parquet(self, name: str, path: str, pipeline: Optional[Pipeline] = None) -> Tuple[int, int, int]: ...
    def close(self) -> None: ...

HitRow = Tuple[str, float, str, Optional[str]]
DocRow = Tuple[str, str, Optional[str]]

class Collection:
    @property
    def name(self) -> str: ...
    @property
    def dims(self) -> int: ...
    @property
    def external(self) -> bool: ...
    def spec(self) -> Optional[str]: ...
    def write(
        self,
        mode: str,
        ids: List[str],
        documents: Optional[List[Optional[str]]] = None,
        vectors: Optional[bytes] = None,
        vector_dims: int = 0,
        metadata: Optional[List[Optional[str]]] = None,
    ) -> Tuple[int, int]: ...
    def get(
        self,
        ids: Optional[List[str]] = None,
        filter: Optional[str] = None,
        offset: int = 0,
        limit: Optional[int] = None,
        with_vectors: bool = False,
    ) -> Tuple[List[DocRow], bytes]: ...
    def delete(self, ids: Optional[List[str]] = None, filter: Optional[str] = None) -> int: ...
    def query(
        self,
        texts: Optional[List[str]] = None,
        vectors: Optional[bytes] = None,
        rows: int = 0,
        vector_dims: int = 0,
        k: int = 10,
        filter: Optional[str] = None,
        mode: str = "dense",
        ef: Optional[int] = None,
        fusion: Optional[str] = None,
        alpha: Optional[float] = None,
    ) -> List[List[HitRow]]: ...
    def embed_bytes(self, texts: List[str], queries: bool = False) -> bytes: ...
    def count(self) -> int: ...
    def export_parquet(self, path: str) -> int: ...
    def time_searches(self, vectors: bytes, rows: int, k: int) -> float: ...

"""``isovec.connect(url)``: the store of an ``isovec serve`` process, with the same Store and
Collection methods as the embedded package — one API, two transports, as chromadb's
PersistentClient and HttpClient. Only the standard library is used (``urllib``); each call is
one HTTP request, answered as the embedded call would answer it, with the same exceptions."""

from __future__ import annotations

import http.client
import json
import threading
import urllib.error
import urllib.parse
import urllib.request
from os import PathLike
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

import numpy as np

from . import errors
from ._collection import OneOrMany, Vectors, Where, _fusion, _include, _list, _query_result
from .errors import InvalidInputError, ServerUnreachableError


def _rows(vectors: Optional[Vectors], what: str) -> Optional[List[List[float]]]:
    if vectors is None:
        return None
    array = np.asarray(vectors, dtype=np.float32)
    if array.ndim == 1:
        array = array.reshape(1, -1)
    if array.ndim != 2:
        raise InvalidInputError(f"{what}: give a 2-D array (one row per item), got {array.ndim} dimensions")
    return array.tolist()


def _fusion_body(fusion: Optional[str], alpha: Union[float, str, None]) -> Dict[str, Any]:
    """The request's ``fusion`` and ``alpha`` fields (absent when not given)."""
    fusion, weight = _fusion(fusion, alpha)
    return {k: v for k, v in (("fusion", fusion), ("alpha", weight)) if v is not None}


def _filter(where: Optional[Where]) -> Any:
    return where if where is None or isinstance(where, str) else dict(where)


def _metadata_list(metadatas: Optional[Sequence[Optional[Mapping[str, Any]]]]) -> Optional[List[Any]]:
    if metadatas is None:
        return None
    if isinstance(metadatas, Mapping):
        metadatas = [metadatas]
    return [None if m is None else dict(m) for m in metadatas]


class _Http:
    """Requests to one server: JSON in, JSON out, its errors raised as ``isovec.errors``."""

    def __init__(self, url: str, token: Optional[str], timeout: float) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout
        try:
            parts = urllib.parse.urlsplit(self.url)
            parts.port  # noqa: B018 (raises on a port out of range or not a number)
        except ValueError as e:
            raise InvalidInputError(f"{url!r} is not a valid server address ({e}); give e.g. http://127.0.0.1:8750") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidInputError(
                f"{url!r} is not an http:// or https:// address of an isovec server; give e.g. http://127.0.0.1:8750"
            )
        self._parts = parts
        # One kept-alive connection per thread (http.client's are not thread-safe).
        self._local = threading.local()

    def _connection(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            cls = http.client.HTTPSConnection if self._parts.scheme == "https" else http.client.HTTPConnection
            conn = cls(self._parts.hostname, self._parts.port, timeout=self.timeout)
            self._local.conn = conn
        return conn

    def _headers(self) -> Dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if self.token is not None:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers

    def call(self, method: str, path: str, body: Any = None) -> Any:
        """One request on this thread's kept-alive connection; its JSON answer."""
        data = None if body is None else json.dumps(body).encode()
        target = self._parts.path.rstrip("/") + path
        for attempt in (0, 1):
            conn = self._connection()
            reused = getattr(self._local, "used", False)
            try:
                conn.request(method, target, body=data, headers=self._headers())
                response = conn.getresponse()
                raw = response.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as e:
                conn.close()
                self._local.conn, self._local.used = None, False
                # A kept-alive connection the server had closed: the request never reached it.
                if reused and attempt == 0:
                    continue
                raise ServerUnreachableError(
                    f"no answer from the isovec server at {self.url} ({e}); is `isovec serve` running there?"
                ) from None
            except (OSError, http.client.HTTPException) as e:
                conn.close()
                self._local.conn, self._local.used = None, False
                raise ServerUnreachableError(
                    f"no answer from the isovec server at {self.url} ({e}); is `isovec serve` running there?"
                ) from None
            self._local.used = True
            if response.status >= 400:
                raise self._error_of(response.status, response.reason, raw)
            return json.loads(raw)
        raise AssertionError("unreachable")

    def open(self, method: str, path: str, body: Any = None):
        """A streamed answer on a connection of its own (an export)."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        if self.token is not None:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            return urllib.request.urlopen(request, timeout=self.timeout)
        except urllib.error.HTTPError as e:
            raise self._error(e) from None
        except (urllib.error.URLError, ConnectionError, TimeoutError) as e:
            raise ServerUnreachableError(
                f"no answer from the isovec server at {self.url} ({e}); is `isovec serve` running there?"
            ) from None

    @staticmethod
    def _error(e: urllib.error.HTTPError) -> Exception:
        return _Http._error_of(e.code, e.reason, e.read())

    @staticmethod
    def _error_of(status: int, reason: str, raw: bytes) -> Exception:
        """The ``isovec.errors`` exception the server's JSON error names."""
        try:
            error = json.loads(raw)["error"]
            cls = getattr(errors, error.get("class", ""), None)
            if not (isinstance(cls, type) and issubclass(cls, errors.IsovecError)):
                cls = errors.IsovecError
            return cls(error["message"])
        except Exception:
            return errors.IsovecError(f"the server answered HTTP {status} {reason}")


class HttpStore:
    """A store served by ``isovec serve``; the methods of ``isovec.Store``."""

    def __init__(self, url: str, token: Optional[str] = None, timeout: float = 120.0) -> None:
        self._http = _Http(url, token, timeout)

    def heartbeat(self) -> bool:
        """Whether the server answers."""
        return self._http.call("GET", "/healthz").get("status") == "ok"

    def _open(self, name: str, pipeline: Any, dims: Optional[int], model: Optional[str], create: bool, new_only: bool):
        if pipeline is not None:
            raise InvalidInputError(
                "a server's collections encode with the pipelines they record (no model travels over HTTP): "
                "create the collection with its pipeline where the server's store is, or leave pipeline out"
            )
        if model is not None and dims is None:
            raise InvalidInputError("model= names the model of your own vectors: give their dims= too")
        quoted = urllib.parse.quote(name, safe="")
        if create:
            body: Dict[str, Any] = {"name": name, "get_or_create": not new_only}
            if dims is not None:
                body["dims"] = int(dims)
                body["model"] = model or "external"
            info = self._http.call("POST", "/collections", body)
        else:
            info = self._http.call("GET", f"/collections/{quoted}")
        return HttpCollection(self._http, info)

    def get_or_create_collection(
        self, name: str, pipeline: Any = None, *, dims: Optional[int] = None, model: Optional[str] = None
    ) -> "HttpCollection":
        """The collection ``name``, created if missing (``dims=``/``model=`` for your own vectors)."""
        return self._open(name, pipeline, dims, model, create=True, new_only=False)

    def create_collection(
        self, name: str, pipeline: Any = None, *, dims: Optional[int] = None, model: Optional[str] = None
    ) -> "HttpCollection":
        """Like ``get_or_create_collection``, but an existing ``name`` is an error."""
        return self._open(name, pipeline, dims, model, create=True, new_only=True)

    def get_collection(self, name: str, pipeline: Any = None) -> "HttpCollection":
        """The existing collection ``name`` (``NotFoundError`` if there is none)."""
        return self._open(name, pipeline, None, None, create=False, new_only=False)

    def collection(self, name: str = "default", pipeline: Any = None) -> "HttpCollection":
        """``get_or_create_collection(name)``."""
        return self.get_or_create_collection(name, pipeline)

    def list_collections(self) -> List[str]:
        """The names of the store's collections."""
        return [c["name"] for c in self._http.call("GET", "/collections")["collections"]]

    def delete_collection(self, name: str) -> None:
        """Deletes the collection ``name`` and its documents (``NotFoundError`` if none)."""
        self._http.call("DELETE", f"/collections/{urllib.parse.quote(name, safe='')}")

    def import_parquet(self, path: Any, collection: str = "default", pipeline: Any = None) -> Dict[str, int]:
        """Not over HTTP (no request names a file): run ``isovec import`` where the store is."""
        raise InvalidInputError(
            "import_parquet reads a file, which no request to a server may name; "
            "add the rows with upsert, or run `isovec import` on the server's machine while it is stopped"
        )

    def close(self) -> None:
        """Nothing to release: the server owns the store."""

    def __enter__(self) -> "HttpStore":
        return self

    def __exit__(self, *exc: object) -> bool:
        return False


class HttpCollection:
    """A collection of a served store; the methods of ``isovec.Collection``."""

    def __init__(self, http: _Http, info: Dict[str, Any]) -> None:
        self._http = http
        self._name = info["name"]
        self._dims = info["dims"]
        self._external = info["external"]
        self._path = f"/collections/{urllib.parse.quote(self._name, safe='')}"

    @property
    def name(self) -> str:
        return self._name

    @property
    def dims(self) -> int:
        return self._dims

    @property
    def external(self) -> bool:
        return self._external

    @property
    def pipeline_spec(self) -> Optional[Dict[str, Any]]:
        """The record of the pipeline that makes its vectors (None without one)."""
        return self._http.call("GET", self._path)["pipeline"]

    def _write(self, mode: str, ids, documents, embeddings, metadatas) -> Dict[str, int]:
        body: Dict[str, Any] = {"ids": _list(ids)}
        if documents is not None:
            body["documents"] = _list(documents)
        if embeddings is not None:
            body["embeddings"] = _rows(embeddings, "embeddings")
        if metadatas is not None:
            body["metadatas"] = _metadata_list(metadatas)
        return self._http.call("POST", f"{self._path}/{mode}", body)

    def add(self, ids: OneOrMany, documents=None, embeddings: Optional[Vectors] = None, metadatas=None) -> Dict[str, int]:
        """Adds new documents (see ``isovec.Collection.add``)."""
        return self._write("add", ids, documents, embeddings, metadatas)

    def upsert(
        self, ids: OneOrMany, documents=None, embeddings: Optional[Vectors] = None, metadatas=None
    ) -> Dict[str, int]:
        """Adds documents, or replaces those whose id exists."""
        return self._write("upsert", ids, documents, embeddings, metadatas)

    def update(
        self, ids: OneOrMany, documents=None, embeddings: Optional[Vectors] = None, metadatas=None
    ) -> Dict[str, int]:
        """Changes existing documents (metadata merged key by key, None removes a key)."""
        return self._write("update", ids, documents, embeddings, metadatas)

    def get(
        self,
        ids: Optional[OneOrMany] = None,
        where: Optional[Where] = None,
        limit: Optional[int] = None,
        offset: Optional[int] = None,
        include: Sequence[str] = ("documents", "metadatas"),
    ) -> Dict[str, Any]:
        """Documents by ids or all, those ``where`` allows (see ``isovec.Collection.get``); a
        listing without ``limit`` is fetched page by page."""
        wanted = _include(include)
        body: Dict[str, Any] = {
            "ids": _list(ids),
            "where": _filter(where),
            "offset": offset or 0,
            "include": [i for i in ("documents", "metadatas", "embeddings") if i in wanted],
        }
        out: Dict[str, Any] = {"ids": [], "documents": [], "metadatas": [], "embeddings": []}
        while True:
            if limit is not None:
                body["limit"] = limit - len(out["ids"])
            page = self._http.call("POST", f"{self._path}/get", body)
            for key in out:
                out[key].extend(page.get(key) or [])
            got = len(page["ids"])
            body["offset"] += got
            if ids is not None or got == 0 or (limit is not None and len(out["ids"]) >= limit):
                break
        result: Dict[str, Any] = {"ids": out["ids"]}
        result["documents"] = out["documents"] if "documents" in wanted else None
        result["metadatas"] = out["metadatas"] if "metadatas" in wanted else None
        result["embeddings"] = (
            np.asarray(out["embeddings"], dtype=np.float32).reshape(len(out["ids"]), self._dims)
            if "embeddings" in wanted
            else None
        )
        return result

    def peek(self, limit: int = 10) -> Dict[str, Any]:
        """The first ``limit`` documents (in id order) with their embeddings."""
        return self.get(limit=limit, include=("documents", "metadatas", "embeddings"))

    def delete(self, ids: Optional[OneOrMany] = None, where: Optional[Where] = None) -> int:
        """Deletes the documents with ``ids`` that ``where`` allows; returns how many."""
        return self._http.call("POST", f"{self._path}/delete", {"ids": _list(ids), "where": _filter(where)})["deleted"]

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
        """The ``n_results`` best documents for each query (see ``isovec.Collection.query``);
        the server encodes concurrent clients' texts together."""
        wanted = _include(include)
        texts = _list(query_texts)
        vectors = _rows(query_embeddings, "query_embeddings")
        if texts is None and vectors is None:
            raise InvalidInputError("query: give query_texts or query_embeddings")
        body = {
            "query_texts": texts,
            "query_embeddings": vectors,
            "n_results": n_results,
            "where": _filter(where),
            "mode": mode,
            "ef": ef,
            **_fusion_body(fusion, alpha),
            "include": [i for i in ("documents", "metadatas", "scores") if i in wanted or i == "scores"],
        }
        r = self._http.call("POST", f"{self._path}/query", body)
        return _query_result(self, r["ids"], r["scores"], r.get("documents"), r.get("metadatas"), wanted, mode)

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
        """The ``k`` best documents for one query ``text``, as dicts with id, score, text, metadata."""
        body = {"query_texts": [text], "n_results": k, "where": _filter(filter), "mode": mode, "ef": ef}
        body.update(_fusion_body(fusion, alpha))
        r = self._http.call("POST", f"{self._path}/query", body)
        return [
            {"id": i, "score": s, "text": t, "metadata": m}
            for i, s, t, m in zip(r["ids"][0], r["scores"][0], r["documents"][0], r["metadatas"][0])
        ]

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """The vectors of documents ``texts`` as the collection's pipeline makes them."""
        return self._embed(texts, queries=False)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Like ``embed``, for queries (with the pipeline's query prefix)."""
        return self._embed(texts, queries=True)

    def _embed(self, texts: Sequence[str], queries: bool) -> np.ndarray:
        texts = [texts] if isinstance(texts, str) else list(texts)
        r = self._http.call("POST", f"{self._path}/embed", {"texts": texts, "queries": queries})
        return np.asarray(r["embeddings"], dtype=np.float32).reshape(len(texts), self._dims)

    def count(self) -> int:
        """Number of documents."""
        return self._http.call("GET", f"{self._path}/count")["count"]

    def export_parquet(self, path: Union[str, "PathLike[str]"]) -> int:
        """Downloads the collection as a Parquet file (``isovec export``'s); returns its rows."""
        with self._http.open("GET", f"{self._path}/export") as response, open(path, "wb") as out:
            rows = int(response.headers["X-Isovec-Rows"])
            while True:
                chunk = response.read(1 << 16)
                if not chunk:
                    break
                out.write(chunk)
        return rows

    def __len__(self) -> int:
        return self.count()

    def __repr__(self) -> str:
        return f"HttpCollection(name={self._name!r}, dims={self._dims}, external={self._external})"


def connect(url: str, token: Optional[str] = None, timeout: float = 120.0) -> HttpStore:
    """The store of the ``isovec serve`` process at ``url`` (``http://127.0.0.1:8750``), with
    ``token`` when the server has one. Checks that it answers."""
    store = HttpStore(url, token, timeout)
    store.heartbeat()
    return store

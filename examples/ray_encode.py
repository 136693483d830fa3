"""Encode a BEIR corpus with Ray Data and isovec's Python package into one Parquet file that
`isovec import` loads with its vectors as they are (no encoding on the importing machine).

    python examples/ray_encode.py --corpus DATA/retrieval/scifact/corpus.jsonl.gz --out scifact.parquet
    isovec import --store STORE --collection scifact scifact.parquet

Each Ray actor loads the pipeline once and encodes batches of documents with one thread, one
actor per core (``--workers``, default: the CPUs Ray has). The driver holds the corpus's texts,
cut into blocks longest first (less padding per batch), and writes the encoded batches as they
come, so the vectors are never all in memory at once; the file's key-value metadata names the pipeline
(``isovec.pipeline``), which is what lets ``isovec import`` take the vectors. A document's text
is its title and text joined by a space, line breaks turned into spaces (as ``isovec eval
retrieval`` does, so that one text a line also works for ``isovec embed --input``).
"""

import argparse
import gzip
import json
import os
import time

import pyarrow as pa
import pyarrow.parquet as pq

if __name__ == "__main__":
    # Run as a script, this starts a Ray cluster on this machine (main()): its processes then
    # talk over loopback, not the network interface's address, and send no usage statistics,
    # unless the environment says otherwise. Ray reads both when it is imported.
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import ray  # noqa: E402

import isovec


def document_text(doc):
    """A BEIR document's text: title and text joined by a space, on one line."""
    title, text = doc.get("title") or "", doc.get("text") or ""
    joined = f"{title} {text}" if title else text
    return " ".join(joined.split())


def read_corpus(path, limit=None):
    """The documents of a BEIR ``corpus.jsonl[.gz]`` as {id, text, metadata} rows."""
    opener = gzip.open if str(path).endswith(".gz") else open
    rows = []
    with opener(path, "rt", encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            doc = json.loads(line)
            rows.append({"id": str(doc["_id"]), "text": document_text(doc), "metadata": None})
            if limit is not None and len(rows) == limit:
                break
    return rows


class Encoder:
    """A Ray actor: one isovec pipeline, loaded once, encoding batches of documents."""

    def __init__(self, model_dir, pooling, transform):
        # The actor's process already runs threads, so the encoding settings come from
        # runtime_env (isovec.TUNING_ENV, see main) rather than isovec.tune_process().
        self.pipeline = isovec.Pipeline(model_dir, pooling, transform)

    def __call__(self, batch):
        vectors = self.pipeline.embed(batch.column("text").to_pylist())
        values = pa.array(vectors.reshape(-1), type=pa.float32())
        column = pa.FixedSizeListArray.from_arrays(values, vectors.shape[1])
        return batch.append_column("vector", column)


def plain(table):
    """``table`` with extension-typed columns (Ray's tensor type) as their storage arrays."""
    columns = []
    for column in table.columns:
        if isinstance(column.type, pa.ExtensionType):
            column = pa.chunked_array([c.storage for c in column.chunks], type=column.type.storage_type)
        columns.append(column)
    return pa.Table.from_arrays(columns, names=table.column_names)


def encode(rows, out, model_dir=None, pooling=None, transform=None, workers=None, batch_size=32):
    """Encodes ``rows`` on the running Ray cluster and writes them to the Parquet file ``out``."""
    pipeline = isovec.Pipeline(model_dir, pooling, transform)
    workers = workers or int(ray.available_resources().get("CPU", 1))
    schema = pa.schema(
        [
            ("id", pa.string()),
            ("text", pa.string()),
            ("metadata", pa.string()),
            ("vector", pa.list_(pa.float32(), pipeline.dims)),
        ],
        metadata={
            "isovec.pipeline": pipeline.id,
            "isovec.dims": str(pipeline.dims),
            "isovec.metric": "cosine",
        },
    )
    # Longest first, so that the texts of a batch have about the same length (a batch is padded
    # to its longest text) and the longest batches do not finish last; the file's row order
    # does not matter to `isovec import`.
    rows = sorted(rows, key=lambda row: len(row["text"]), reverse=True)
    table = pa.Table.from_pylist(rows, schema=schema.remove(3).remove_metadata())
    # Several blocks per actor, so that every actor gets work. The blocks are cut here, in the
    # driver: a `repartition()` would be a Ray task that needs a CPU, and with one actor per
    # core the actor pool holds every CPU, so that task never runs and the dataset hangs.
    blocks = max(1, min(workers * 4, -(-len(rows) // batch_size)))
    per_block = max(1, -(-len(rows) // blocks))
    slices = [table.slice(start, per_block) for start in range(0, len(rows), per_block)] or [table]
    encoded = ray.data.from_arrow(slices).map_batches(
        Encoder,
        fn_constructor_args=(model_dir, pooling, transform),
        batch_size=batch_size,
        batch_format="pyarrow",
        compute=ray.data.ActorPoolStrategy(size=workers),
        num_cpus=1,
    )
    written = 0
    with pq.ParquetWriter(out, schema, compression="zstd") as writer:
        for batch in encoded.iter_batches(batch_format="pyarrow", batch_size=1024):
            table = plain(batch if isinstance(batch, pa.Table) else pa.Table.from_batches([batch]))
            writer.write_table(table.select(schema.names).cast(schema))
            written += table.num_rows
    return written


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", required=True, help="BEIR corpus.jsonl or corpus.jsonl.gz")
    parser.add_argument("--out", required=True, help="Parquet file to write")
    parser.add_argument("--model", default=None, help="model folder (default: the installed default model)")
    parser.add_argument("--pooling", default=None, help="default: mean, or the pooling the transform was fitted on")
    parser.add_argument("--transform", default=None, help="a transform file from `isovec fit`")
    parser.add_argument("--workers", type=int, default=None, help="actors, one per core (default: all CPUs)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N documents")
    args = parser.parse_args()
    start = time.monotonic()
    # One encoding thread per actor: the actors are the parallelism. isovec.TUNING_ENV: what
    # tune_process() would set, given to each worker process before it starts.
    env = {"RAYON_NUM_THREADS": "1", **isovec.TUNING_ENV}
    ray.init(num_cpus=args.workers, runtime_env={"env_vars": env}, include_dashboard=False)
    rows = read_corpus(args.corpus, args.limit)
    written = encode(rows, args.out, args.model, args.pooling, args.transform, args.workers)
    seconds = time.monotonic() - start
    print(
        f"wrote {written} encoded documents to {os.path.abspath(args.out)} in {seconds:.1f} s "
        f"({written / seconds:.1f} documents/s, Ray's start included)"
    )


if __name__ == "__main__":
    main()

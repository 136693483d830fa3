"""Encode a BEIR corpus with Ray Data and isovec's Python package into one Parquet file that
`isovec import` loads with its vectors as they are (no encoding on the importing machine).

    python examples/ray_encode.py --corpus DATA/retrieval/scifact/corpus.jsonl.gz --out scifact.parquet
    isovec import --store STORE --collection scifact scifact.parquet

Each Ray actor loads the pipeline once and encodes batches of documents with one thread, one
actor per core (``--workers``, default: the CPUs Ray has). The driver writes the batches as they
come, so memory stays bounded by a few batches; the file's key-value metadata names the pipeline
(``isovec.pipeline``), which is what lets ``isovec import`` take the vectors. A document's text
is its title and text joined by a space, line breaks turned into spaces (as ``isovec eval
retrieval`` does, so that one text a line also works for ``isovec embed --input``).
"""

import argparse
import gzip
import json
import os

import pyarrow as pa
import pyarrow.parquet as pq
import ray

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
        isovec.tune_process()
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


def encode(rows, out, model_dir=None, pooling="mean", transform=None, workers=None, batch_size=32):
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
    table = pa.Table.from_pylist(rows, schema=schema.remove(3).remove_metadata())
    # Several blocks per actor, so that every actor gets work.
    blocks = max(1, min(workers * 4, -(-len(rows) // batch_size)))
    encoded = ray.data.from_arrow(table).repartition(blocks).map_batches(
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
    parser.add_argument("--pooling", default="mean")
    parser.add_argument("--transform", default=None, help="a transform file from `isovec fit`")
    parser.add_argument("--workers", type=int, default=None, help="actors, one per core (default: all CPUs)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N documents")
    args = parser.parse_args()
    # One encoding thread per actor: the actors are the parallelism.
    ray.init(num_cpus=args.workers, runtime_env={"env_vars": {"RAYON_NUM_THREADS": "1"}}, include_dashboard=False)
    rows = read_corpus(args.corpus, args.limit)
    written = encode(rows, args.out, args.model, args.pooling, args.transform, args.workers)
    print(f"wrote {written} encoded documents to {os.path.abspath(args.out)}")


if __name__ == "__main__":
    main()

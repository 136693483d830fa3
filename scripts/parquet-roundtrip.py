"""Export/import round trip on the 100k-sentence ANN set, with rows/s both ways.

    python scripts/parquet-roundtrip.py --data ../shared/data [--vectors base.npy] [--work DIR]

Writes a Parquet file of the 100,000 sentences (ids s0..s99999, metadata on two rows in three)
with their vectors — `--vectors` (e.g. `isovec embed --input sentences.txt.gz --out base.npy`),
else seeded random unit vectors — under the default pipeline's id; `isovec import` loads it
into a new store, `isovec export` writes it back, and every id, text, metadata and vector of the
export is compared with the input, bit for bit. `isovec import` and `isovec export` print their
rows/s. Needs the release build, the default model (for its pipeline id) and the Python package.
"""

import argparse
import gzip
import json
import pathlib
import subprocess
import sys
import tempfile

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

import isovec

REPO = pathlib.Path(__file__).resolve().parents[1]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--vectors", default=None)
    parser.add_argument("--work", default=None)
    parser.add_argument("--isovec", default=str(REPO / "target" / "release" / "isovec"))
    args = parser.parse_args()
    work = pathlib.Path(args.work or tempfile.mkdtemp(prefix="isovec-roundtrip-"))
    with gzip.open(pathlib.Path(args.data) / "ann" / "sentences.txt.gz", "rt", encoding="utf-8") as f:
        sentences = [line.rstrip("\n") for line in f]
    n = len(sentences)
    pipeline = isovec.Pipeline()
    if args.vectors:
        vectors = np.load(args.vectors).astype(np.float32)
    else:
        vectors = np.random.default_rng(42).standard_normal((n, pipeline.dims)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    assert vectors.shape == (n, pipeline.dims)
    ids = [f"s{i}" for i in range(n)]
    metadata = [None if i % 3 == 0 else json.dumps({"line": i}) for i in range(n)]
    schema = pa.schema(
        [("id", pa.string()), ("text", pa.string()), ("metadata", pa.string()), ("vector", pa.list_(pa.float32(), pipeline.dims))],
        metadata={"isovec.pipeline": pipeline.id, "isovec.dims": str(pipeline.dims), "isovec.metric": "cosine"},
    )
    column = pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), pipeline.dims)
    source = work / "source.parquet"
    pq.write_table(pa.Table.from_arrays([pa.array(ids), pa.array(sentences), pa.array(metadata, pa.string()), column], schema=schema), source, row_group_size=8192, compression="zstd")
    store, back = work / "store", work / "export.parquet"
    subprocess.run([args.isovec, "import", "--store", str(store), "--collection", "ann", str(source)], check=True)
    subprocess.run([args.isovec, "export", "--store", str(store), "--collection", "ann", "--out", str(back)], check=True)
    table = pq.read_table(back)
    order = np.argsort(np.array([int(i[1:]) for i in table.column("id").to_pylist()]))
    table = table.take(pa.array(order))
    assert table.column("id").to_pylist() == ids
    assert table.column("text").to_pylist() == sentences
    got_meta = [None if m is None else json.loads(m) for m in table.column("metadata").to_pylist()]
    assert got_meta == [None if m is None else json.loads(m) for m in metadata]
    got = table.column("vector").combine_chunks().flatten().to_numpy().reshape(n, pipeline.dims)
    assert np.array_equal(got.view(np.uint32), vectors.view(np.uint32)), "vectors differ"
    print(f"round trip exact: {n} rows (ids, texts, metadata, vectors bit for bit); files in {work}", file=sys.stderr)


if __name__ == "__main__":
    main()

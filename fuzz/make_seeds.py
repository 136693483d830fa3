#!/usr/bin/env python3
"""Writes a few valid inputs per fuzz target into fuzz/seeds/TARGET/ (starting points the fuzzer
mutates; structured formats are rarely reached from empty input). Run by scripts/fuzz.sh."""
import gzip
import json
import os
import struct
import sys

root = os.path.dirname(os.path.abspath(__file__))
repo = os.path.dirname(root)
seeds = os.path.join(root, "seeds")


def put(target, name, data):
    os.makedirs(os.path.join(seeds, target), exist_ok=True)
    with open(os.path.join(seeds, target, name), "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)


def npy(rows, dims, version=1):
    """A .npy file of version 1 (u16 header length) or 2 (u32 header length)."""
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d), }" % (rows, dims)
    prefix = 10 if version == 1 else 12
    header += " " * ((64 - (prefix + len(header) + 1) % 64) % 64) + "\n"
    values = struct.pack("<%df" % (rows * dims), *[i * 0.25 - 1 for i in range(rows * dims)])
    size = struct.pack("<H" if version == 1 else "<I", len(header))
    return b"\x93NUMPY" + bytes([version, 0]) + size + header.encode() + values


def safetensors(metadata, tensors):
    header, data = {"__metadata__": metadata}, b""
    for name, (shape, values) in tensors.items():
        raw = struct.pack("<%dd" % len(values), *values)
        header[name] = {"dtype": "F64", "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + data


def main():
    for i, expr in enumerate([
        "lang=en AND year>=2020 AND tag IN (a,b)",
        'title="two words" AND score<0.5 AND n>-3e2',
        "year>1999 AND year<=2021 AND ok=true",
        "a.b=1",
    ]):
        put("filter_expr", f"expr{i}", expr)
    for i, obj in enumerate([
        {"lang": "en", "year": {"gte": 2020, "lt": 2030}},
        {"tag": ["a", "b"], "ok": True, "n": {"eq": 3}},
        {"topic": {"in": ["health", "space"]}, "score": {"gt": 0.5, "lte": 1}},
    ]):
        put("filter_json", f"json{i}", json.dumps(obj))
    put("npy", "2x3", npy(2, 3))
    put("npy", "0x4", npy(0, 4))
    put("npy", "v2-1x2", npy(1, 2, version=2))
    put("text_lines", "plain", "one\r\ntwo\n\nthree")
    put("text_lines", "gzip", gzip.compress(b"alpha\nbeta\n"))
    put("csv", "triplets", 'sent0,sent1,hard_neg\n"a, quoted ""one""",b,c\nx,y,z\n')
    with open(os.path.join(repo, "fixtures/corpus.jsonl"), encoding="utf-8") as f:
        put("json_lines", "index", "".join(f.readlines()[:3]))
    beir = [open(os.path.join(repo, "fixtures/beir-tiny", p), encoding="utf-8").read()
            for p in ("corpus.jsonl", "queries.jsonl", "qrels/test.tsv")]
    put("json_lines", "beir", "\0".join(beir))
    put("records", "doc", struct.pack("<Q", 7) + "some text".encode())
    put("records", "vector", struct.pack("<I", 3) + b"abc" + struct.pack("<3f", 0.5, -1, 2))
    put("records", "counter", struct.pack("<Q", 42))
    put("records", "config", json.dumps({
        "dims": 4, "metric": "cosine", "hnsw": {"m": 16, "ef_construction": 200, "ef_search": 64},
        "pipeline": {"encoder": {"model": "m", "weights_sha256": "0" * 64, "pooling": "mean", "max_length": 128},
                     "transform": None, "normalize": True}}))
    encoder = json.dumps({"model": "all-MiniLM-L6-v2", "weights_sha256": "0" * 64, "pooling": "mean", "max_length": 256})
    d, k = 3, 2
    put("transform_file", "whiten", safetensors(
        {"isovec.transform": "whiten", "isovec.encoder": encoder, "isovec.format": "1",
         "isovec.config": json.dumps({"input_dims": d, "output_dims": k})},
        {"mean": ([d], [0.1, 0.2, 0.3]), "projection": ([d, k], [1, 0, 0, 1, 0.5, 0.5]), "eigenvalues": ([k], [2.0, 1.0])}))


if __name__ == "__main__":
    sys.exit(main())

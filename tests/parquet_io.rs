//! Parquet export and import: exact round trips, files written by other tools, and damaged or
//! truncated files refused with the target store unchanged.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{ArrayRef, Float32Array, ListArray, RecordBatch, StringArray};
use arrow_schema::{Field, Schema};
use common::{doc, random_unit, BagOfWords};
use isovec::parquet_io::{ExportReport, ParquetImport, DIGEST_KEY, PIPELINE_KEY};
use isovec::store::{Collection, CollectionConfig, Doc, HnswParams, PassagesDoc, Store};
use isovec::{Embedder, Error};
use parquet::arrow::ArrowWriter;
use parquet::file::metadata::KeyValue;
use parquet::file::reader::{FileReader, SerializedFileReader};
use serde_json::json;

const DIMS: usize = 16;

fn no_progress(_: u64, _: u64) {}

/// Documents with every kind of content: metadata objects with floats and nesting, null
/// metadata, non-ASCII text, and a few documents indexed as passages.
fn fill(c: &Collection) -> Vec<Doc> {
    let mut docs: Vec<Doc> = (0..300).map(|i| doc(i, DIMS, 4)).collect();
    for d in docs.iter_mut().step_by(7) {
        d.metadata = serde_json::Value::Null;
    }
    docs[1].text = "naïve café — 東京 ✓".into();
    docs[2].metadata = json!({"score": 0.1, "tags": ["a", "b"], "nested": {"x": -1.5e-7}});
    c.upsert(&docs).unwrap();
    let passages: Vec<PassagesDoc> = (0..5)
        .map(|i| PassagesDoc {
            id: format!("long-{i}"),
            text: format!("a long document {i} in three passages"),
            metadata: json!({"long": true}),
            vectors: (0..3).map(|p| random_unit(10_000 + i * 10 + p, DIMS)).collect(),
        })
        .collect();
    c.upsert_passages(&passages).unwrap();
    docs
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// Every document of `a` is in `b` with the same text, metadata and first vector (bit for bit).
fn assert_same_documents(a: &Collection, b: &Collection) {
    let ids = a.ids().unwrap();
    assert_eq!(ids, b.ids().unwrap());
    for id in &ids {
        let (x, y) = (a.get(id).unwrap().unwrap(), b.get(id).unwrap().unwrap());
        assert_eq!((&x.text, &x.metadata), (&y.text, &y.metadata), "{id}");
        assert_eq!(bits(&x.vector), bits(&y.vector), "{id}");
    }
}

fn key_value(path: &Path, key: &str) -> Option<String> {
    let reader = SerializedFileReader::new(std::fs::File::open(path).unwrap()).unwrap();
    let kv = reader.metadata().file_metadata().key_value_metadata()?.clone();
    kv.into_iter().find(|e| e.key == key).and_then(|e| e.value)
}

/// A store at `dir/a` whose collection `docs` holds [`fill`]'s documents, exported to
/// `dir/docs.parquet`: the store, the collection, the documents, the file and the export's report.
fn exported_source(dir: &Path, emb: &BagOfWords) -> (Store, Collection, Vec<Doc>, PathBuf, ExportReport) {
    let source = Store::open(dir.join("a")).unwrap();
    let a = source.create_collection("docs", emb.config()).unwrap();
    let docs = fill(&a);
    let file = dir.join("docs.parquet");
    let report = a.export_parquet(&file, &no_progress).unwrap();
    (source, a, docs, file, report)
}

#[test]
fn export_then_import_is_exact_passages_included() {
    let dir = tempfile::tempdir().unwrap();
    let emb = BagOfWords::new(DIMS);
    let (_source, a, docs, file, report) = exported_source(dir.path(), &emb);
    assert_eq!((report.documents, report.rows), (305, 300 + 15));

    let checked = ParquetImport::verify(&file, &no_progress).unwrap();
    assert_eq!(checked.info().rows, 315);
    assert_eq!(checked.info().dims, Some(DIMS));
    assert_eq!(checked.info().pipeline.as_ref(), Some(emb.id()));
    let target = Store::open(dir.path().join("b")).unwrap();
    let imported = target.import_parquet("copy", &checked, None, &no_progress).unwrap();
    assert_eq!((imported.rows, imported.inserted, imported.replaced, imported.encoded), (315, 305, 0, false));
    let b = target.collection("copy").unwrap();
    assert_eq!(b.config().pipeline, *emb.id());
    assert_same_documents(&a, &b);
    // Every passage vector came back too: the same queries find the same documents and scores,
    // and the second export's rows (all vectors, bit for bit) have the first one's digest.
    for q in 0..20 {
        let query = random_unit(500 + q, DIMS);
        let hits = |c: &Collection| -> Vec<(String, u32)> {
            c.search_exact(&query, 10).unwrap().into_iter().map(|h| (h.id, h.score.to_bits())).collect()
        };
        assert_eq!(hits(&a), hits(&b));
    }
    let again = dir.path().join("again.parquet");
    b.export_parquet(&again, &no_progress).unwrap();
    assert_eq!(key_value(&file, DIGEST_KEY), key_value(&again, DIGEST_KEY));
    assert!(key_value(&file, DIGEST_KEY).is_some());
    // Importing again replaces every document and changes none.
    let twice = target.import_parquet("copy", &checked, None, &no_progress).unwrap();
    assert_eq!((twice.inserted, twice.replaced), (0, 305));
    assert_same_documents(&a, &b);
    assert_eq!(docs.len(), 300);
}

/// A store with collection `docs` of 20 documents, and what it holds.
fn target_store(dir: &Path, emb: &BagOfWords) -> (Store, Vec<Doc>) {
    let store = Store::open(dir).unwrap();
    let c = store.create_collection("docs", emb.config()).unwrap();
    let docs: Vec<Doc> = (1000..1020).map(|i| doc(i, DIMS, 2)).collect();
    c.upsert(&docs).unwrap();
    (store, docs)
}

/// The store still holds exactly `docs` in `docs`, and no other collection.
fn assert_unchanged(store: &Store, docs: &[Doc]) {
    let names: Vec<String> = store.list_collections().unwrap().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["docs"]);
    let c = store.collection("docs").unwrap();
    assert_eq!(c.count().unwrap(), docs.len() as u64);
    for d in docs {
        let got = c.get(&d.id).unwrap().unwrap();
        assert_eq!((bits(&got.vector), &got.metadata), (bits(&d.vector), &d.metadata));
    }
}

/// Verifies then imports `file` into `docs` and `new`: `Err` with the message, or `Ok`.
fn try_import(store: &Store, file: &Path) -> Result<(), String> {
    let checked = ParquetImport::verify(file, &no_progress).map_err(|e| e.to_string())?;
    store.import_parquet("new", &checked, None, &no_progress).map_err(|e| e.to_string())?;
    store.import_parquet("docs", &checked, None, &no_progress).map_err(|e| e.to_string())?;
    Ok(())
}

#[test]
fn damaged_or_truncated_files_are_refused_and_the_store_is_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let emb = BagOfWords::new(DIMS);
    let (_source, a, _docs, good, _report) = exported_source(dir.path(), &emb);
    let bytes = std::fs::read(&good).unwrap();
    let (target, before) = target_store(&dir.path().join("b"), &emb);
    let bad = dir.path().join("bad.parquet");

    for len in [0, 4, 100, bytes.len() / 2, bytes.len() - 9, bytes.len() - 1] {
        std::fs::write(&bad, &bytes[..len]).unwrap();
        let err = try_import(&target, &bad).unwrap_err();
        assert!(err.contains("cannot be imported") && err.contains("the store was not changed"), "{len}: {err}");
        assert_unchanged(&target, &before);
    }

    // Flipping a byte in the rows' pages (id column, vector column), in the footer's length or
    // in the closing magic number is refused.
    let reader = SerializedFileReader::new(std::fs::File::open(&good).unwrap()).unwrap();
    let group = reader.metadata().row_group(0);
    let middle = |column: usize| {
        let (start, len) = group.column(column).byte_range();
        ((start + len / 2) as usize).min(bytes.len() - 9)
    };
    for at in [middle(0), middle(4), bytes.len() - 6, bytes.len() - 2] {
        let mut damaged = bytes.clone();
        damaged[at] ^= 0x5a;
        std::fs::write(&bad, &damaged).unwrap();
        let err = try_import(&target, &bad).unwrap_err();
        assert!(err.contains("cannot be imported"), "byte {at}: {err}");
        assert_unchanged(&target, &before);
    }
    // Anywhere else, a flipped byte is refused, or it was in something import does not read
    // (statistics, padding) and the rows come out exactly as exported.
    let mut refused = 0;
    for k in 0..40 {
        let at = 4 + k * (bytes.len() - 12) / 40;
        let mut damaged = bytes.clone();
        damaged[at] ^= 0x01;
        std::fs::write(&bad, &damaged).unwrap();
        let scratch = Store::open(dir.path().join(format!("s{k}"))).unwrap();
        match ParquetImport::verify(&bad, &no_progress) {
            Err(e) => {
                assert!(e.to_string().contains("cannot be imported"), "byte {at}: {e}");
                refused += 1;
            }
            Ok(checked) => {
                scratch.import_parquet("docs", &checked, None, &no_progress).unwrap();
                assert_same_documents(&a, &scratch.collection("docs").unwrap());
            }
        }
    }
    assert!(refused >= 20, "most bytes of a file are rows and their structure: {refused} of 40 refused");
}

#[test]
fn a_file_of_another_pipeline_is_an_error_naming_both() {
    let dir = tempfile::tempdir().unwrap();
    let ours = BagOfWords::named("model-one", DIMS);
    let theirs = BagOfWords::named("model-two", DIMS);
    let source = Store::open(dir.path().join("a")).unwrap();
    let a = source.create_collection("docs", theirs.config()).unwrap();
    a.upsert(&[doc(1, DIMS, 1)]).unwrap();
    let file = dir.path().join("theirs.parquet");
    a.export_parquet(&file, &no_progress).unwrap();
    let (target, before) = target_store(&dir.path().join("b"), &ours);
    let checked = ParquetImport::verify(&file, &no_progress).unwrap();
    let err = target.import_parquet("docs", &checked, None, &no_progress).unwrap_err();
    assert!(matches!(err, Error::PipelineMismatch { .. }), "{err}");
    let message = err.to_string();
    assert!(message.contains("model-one") && message.contains("model-two"), "{message}");
    assert_unchanged(&target, &before);
}

/// Writes a Parquet file the way another tool might: the given columns, the given key-values.
fn write_foreign(path: &Path, columns: Vec<(&str, ArrayRef)>, kv: Vec<(&str, String)>) {
    let fields: Vec<Field> = columns.iter().map(|(n, a)| Field::new(*n, a.data_type().clone(), true)).collect();
    let schema = Arc::new(Schema::new(fields));
    let batch = RecordBatch::try_new(schema.clone(), columns.into_iter().map(|(_, a)| a).collect()).unwrap();
    let mut writer = ArrowWriter::try_new(std::fs::File::create(path).unwrap(), schema, None).unwrap();
    writer.write(&batch).unwrap();
    for (k, v) in kv {
        writer.append_key_value_metadata(KeyValue::new(k.to_string(), v));
    }
    writer.close().unwrap();
}

#[test]
fn files_from_other_tools_list_vectors_or_text_only() {
    let dir = tempfile::tempdir().unwrap();
    let emb = BagOfWords::new(DIMS);
    let texts = ["the first text", "a second one", "and a third"];
    let ids: ArrayRef = Arc::new(StringArray::from(vec!["x", "y", "z"]));
    let text_col: ArrayRef = Arc::new(StringArray::from(texts.to_vec()));
    let vectors: Vec<Vec<f32>> = (0..3).map(|i| random_unit(40 + i, DIMS)).collect();
    let list: ArrayRef = Arc::new(ListArray::from_iter_primitive::<arrow_array::types::Float32Type, _, _>(
        vectors.iter().map(|v| Some(v.iter().map(|x| Some(*x)).collect::<Vec<_>>())),
    ));
    let store = Store::open(dir.path().join("s")).unwrap();

    // Variable-length float lists, no passage or metadata column, the pipeline given.
    let with_vectors = dir.path().join("vectors.parquet");
    let pipeline = serde_json::to_string(emb.id()).unwrap();
    write_foreign(
        &with_vectors,
        vec![("id", ids.clone()), ("text", text_col.clone()), ("vector", list.clone())],
        vec![(PIPELINE_KEY, pipeline)],
    );
    let checked = ParquetImport::verify(&with_vectors, &no_progress).unwrap();
    assert!(!checked.info().has_digest);
    store.import_parquet("v", &checked, None, &no_progress).unwrap();
    let c = store.collection("v").unwrap();
    for (id, v) in ["x", "y", "z"].iter().zip(&vectors) {
        assert_eq!(bits(&c.get(id).unwrap().unwrap().vector), bits(v));
    }

    // Vectors without the pipeline that made them cannot be taken.
    let anonymous = dir.path().join("anonymous.parquet");
    write_foreign(&anonymous, vec![("id", ids.clone()), ("text", text_col.clone()), ("vector", list)], vec![]);
    let checked = ParquetImport::verify(&anonymous, &no_progress).unwrap();
    let err = store.import_parquet("anon", &checked, None, &no_progress).unwrap_err().to_string();
    assert!(err.contains(PIPELINE_KEY), "{err}");

    // Texts only: encoded by the pipeline given, which is required.
    let text_only = dir.path().join("texts.parquet");
    let metadata: ArrayRef = Arc::new(StringArray::from(vec![Some(r#"{"k": 1}"#), None, Some("{}")]));
    write_foreign(&text_only, vec![("id", ids), ("text", text_col), ("metadata", metadata)], vec![]);
    let checked = ParquetImport::verify(&text_only, &no_progress).unwrap();
    let err = store.import_parquet("t", &checked, None, &no_progress).unwrap_err().to_string();
    assert!(err.contains("give a pipeline"), "{err}");
    let report = store.import_parquet("t", &checked, Some(&emb as &dyn Embedder), &no_progress).unwrap();
    assert!(report.encoded);
    let c = store.collection("t").unwrap();
    for (id, text) in ["x", "y", "z"].iter().zip(texts) {
        assert_eq!(bits(&c.get(id).unwrap().unwrap().vector), bits(&emb.vector(text)));
    }
    assert_eq!(c.get("x").unwrap().unwrap().metadata, json!({"k": 1}));
    assert!(store.list_collections().unwrap().iter().all(|(n, _)| n != "anon"));
}

#[test]
fn bad_rows_are_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let emb = BagOfWords::new(DIMS);
    let (store, before) = target_store(&dir.path().join("s"), &emb);
    let pipeline = serde_json::to_string(emb.id()).unwrap();
    let file = dir.path().join("bad.parquet");
    let list = |vs: Vec<Vec<f32>>| -> ArrayRef {
        Arc::new(ListArray::from_iter_primitive::<arrow_array::types::Float32Type, _, _>(
            vs.into_iter().map(|v| Some(v.into_iter().map(Some).collect::<Vec<_>>())),
        ))
    };
    let strings = |v: Vec<&str>| -> ArrayRef { Arc::new(StringArray::from(v)) };
    let cases: Vec<(Vec<(&str, ArrayRef)>, &str)> = vec![
        (
            vec![
                ("id", strings(vec!["a", "b"])),
                ("text", strings(vec!["t", "u"])),
                ("vector", list(vec![random_unit(1, DIMS), vec![0.0; DIMS]])),
            ],
            "zero",
        ),
        (
            vec![
                ("id", strings(vec!["a", "b"])),
                ("text", strings(vec!["t", "u"])),
                ("vector", list(vec![random_unit(1, DIMS), random_unit(2, DIMS + 1)])),
            ],
            "values where",
        ),
        (
            vec![
                ("id", strings(vec!["a", ""])),
                ("text", strings(vec!["t", "u"])),
                ("vector", list(vec![random_unit(1, DIMS), random_unit(2, DIMS)])),
            ],
            "id is empty",
        ),
        (
            vec![
                ("id", strings(vec!["a", "b"])),
                ("text", strings(vec!["t", "u"])),
                ("metadata", strings(vec!["{}", "[1]"])),
                ("vector", list(vec![random_unit(1, DIMS), random_unit(2, DIMS)])),
            ],
            "JSON object",
        ),
        (vec![("id", strings(vec!["a"])), ("vector", list(vec![random_unit(1, DIMS)]))], "no \"text\" column"),
        (
            vec![
                ("id", strings(vec!["a", "b"])),
                ("text", strings(vec!["t", "u"])),
                ("vector", Arc::new(Float32Array::from(vec![1.0, 2.0])) as ArrayRef),
            ],
            "lists of float32",
        ),
    ];
    for (columns, expected) in cases {
        write_foreign(&file, columns, vec![(PIPELINE_KEY, pipeline.clone())]);
        let err = ParquetImport::verify(&file, &no_progress).unwrap_err().to_string();
        assert!(err.contains(expected) && err.contains("the store was not changed"), "expected {expected:?}: {err}");
        assert_unchanged(&store, &before);
    }
}

/// The 100,000 sentences of the ANN set, each with a random vector (every mantissa bit in use),
/// through export and import: ids, texts, metadata and vectors come back bit for bit.
#[test]
fn the_100k_ann_set_round_trips_exactly() {
    let Some(data) = common::paths::data_dir("ann/sentences.txt.gz") else { return };
    let sentences = isovec::eval::text_file::read_lines(&data.join("ann/sentences.txt.gz")).unwrap();
    assert_eq!(sentences.len(), 100_000);
    let dims = 384;
    let dir = tempfile::tempdir().unwrap();
    let emb = BagOfWords::new(dims);
    // A cheap graph: the round trip does not depend on it.
    let config = CollectionConfig { hnsw: HnswParams { m: 4, ef_construction: 8, ef_search: 8 }, ..emb.config() };
    let source = Store::open(dir.path().join("a")).unwrap();
    let a = source.create_collection("ann", config.clone()).unwrap();
    let docs: Vec<Doc> = sentences
        .iter()
        .enumerate()
        .map(|(i, s)| Doc {
            id: format!("s{i}"),
            text: s.clone(),
            metadata: if i % 3 == 0 { serde_json::Value::Null } else { json!({"line": i, "part": i as f64 / 7.0}) },
            vector: random_unit(i as u64, dims),
        })
        .collect();
    for chunk in docs.chunks(10_000) {
        a.upsert(chunk).unwrap();
    }
    let file = dir.path().join("ann.parquet");
    assert_eq!(a.export_parquet(&file, &no_progress).unwrap().rows, 100_000);
    let target = Store::open(dir.path().join("b")).unwrap();
    let b = target.create_collection("ann", config).unwrap();
    let checked = ParquetImport::verify(&file, &no_progress).unwrap();
    assert_eq!(target.import_parquet("ann", &checked, None, &no_progress).unwrap().inserted, 100_000);
    for d in &docs {
        let got = b.get(&d.id).unwrap().unwrap();
        assert_eq!((&got.text, &got.metadata, bits(&got.vector)), (&d.text, &d.metadata, bits(&d.vector)), "{}", d.id);
    }
    assert_eq!(b.count().unwrap(), 100_000);
    let hits = b.search_exact(&docs[42].vector, 1).unwrap();
    assert_eq!(hits[0].id, "s42");
}

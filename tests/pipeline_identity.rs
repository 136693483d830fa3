//! A pipeline's identity comes from the files that determine its vectors, not from folder names;
//! stores written before that (fixtures/store-d029160) keep opening and searching.
//!
//! Every test here builds the same tiny BERT folder (fixed weights, vocab.txt), so none needs a
//! downloaded model.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use isovec::encoder::{Encoder, EncoderOptions, Pooling};
use isovec::store::{Collection, CollectionConfig, SearchParams, Store, TextDoc};
use isovec::transform::{fit_whitening, Transform};
use isovec::{Embedder, EncoderId, Pipeline, PipelineId};

mod common;
use common::copy_dir;
use isovec::test_support::tiny_model::{write_tiny_model, write_tiny_model_variant, VOCAB};

/// The documents of the fixture store.
const DOCS: &[(&str, &str)] = &[
    ("d1", "the cat sat on the mat"),
    ("d2", "a dog ran in the park"),
    ("d3", "the bread rises in the hot oven"),
    ("d4", "a ship sails on the cold sea"),
    ("d5", "the rain falls on the city at night"),
    ("d6", "loud music plays in the city"),
];

fn encoder(dir: &Path) -> Arc<Encoder> {
    Arc::new(Encoder::load(dir, EncoderOptions::default()).unwrap())
}

fn id_of(dir: &Path) -> PipelineId {
    Pipeline::new(encoder(dir), Pooling::Mean, None).unwrap().id().clone()
}

fn texts() -> Vec<&'static str> {
    DOCS.iter().map(|d| d.1).collect()
}

/// The mean-pooled pipeline of `dir` whitened to `k` dimensions, fitted on the documents.
fn whitened(dir: &Path, k: usize) -> Pipeline {
    let enc = encoder(dir);
    let raw = Pipeline::new(enc.clone(), Pooling::Mean, None).unwrap();
    let whitening = fit_whitening(&raw.embed(&texts()).unwrap(), &raw.id().encoder, Some(k)).unwrap();
    Pipeline::new(enc, Pooling::Mean, Some(Arc::new(Transform::from(whitening)))).unwrap()
}

/// Writes `tokenizer.json` for the tiny model's vocabulary (BERT's WordPiece pipeline).
fn write_tokenizer_json(dir: &Path) {
    use tokenizers::models::wordpiece::WordPiece;
    use tokenizers::normalizers::BertNormalizer;
    use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
    use tokenizers::processors::bert::BertProcessing;
    let vocab = dir.join("vocab.txt");
    let wordpiece = WordPiece::from_file(vocab.to_str().unwrap()).unk_token("[UNK]".into()).build().unwrap();
    let mut tokenizer = tokenizers::Tokenizer::new(wordpiece);
    tokenizer
        .with_normalizer(Some(BertNormalizer::new(true, true, None, true)))
        .unwrap()
        .with_pre_tokenizer(Some(BertPreTokenizer))
        .with_post_processor(Some(BertProcessing::new(("[SEP]".into(), 3), ("[CLS]".into(), 2))));
    tokenizer.save(dir.join("tokenizer.json"), true).unwrap();
}

#[test]
fn renaming_the_model_folder_keeps_the_id() {
    let tmp = tempfile::tempdir().unwrap();
    let (first, second) = (tmp.path().join("first-name"), tmp.path().join("second-name"));
    write_tiny_model(&first);
    let before = id_of(&first);
    std::fs::rename(&first, &second).unwrap();
    let after = id_of(&second);
    assert_eq!((before.encoder.model.as_str(), after.encoder.model.as_str()), ("first-name", "second-name"));
    assert!(before.encoder.files_sha256.is_some());
    assert_eq!(before, after);
    assert_eq!(before.encoder.files_sha256, after.encoder.files_sha256);
    assert_eq!(before.fingerprint(), after.fingerprint());
}

#[test]
fn changing_a_tokenizer_or_config_file_changes_the_id() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("tiny");
    write_tiny_model(&dir);
    let mut seen = vec![("vocab.txt", id_of(&dir))];
    // The vocabulary with two words swapped: other token ids, other vectors.
    let swapped: Vec<&str> = VOCAB
        .iter()
        .map(|w| match *w {
            "cat" => "dog",
            "dog" => "cat",
            w => w,
        })
        .collect();
    std::fs::write(dir.join("vocab.txt"), swapped.join("\n") + "\n").unwrap();
    seen.push(("vocab.txt with cat and dog swapped", id_of(&dir)));
    std::fs::write(dir.join("tokenizer_config.json"), r#"{"do_lower_case": false}"#).unwrap();
    seen.push(("no lower-casing", id_of(&dir)));
    write_tokenizer_json(&dir);
    let cat_before = Pipeline::new(encoder(&dir), Pooling::Mean, None).unwrap().embed(&["cat"]).unwrap();
    seen.push(("tokenizer.json", id_of(&dir)));
    // tokenizer.json with the ids of "sat" and "ran" swapped: "sat" tokenizes differently.
    let path = dir.join("tokenizer.json");
    let mut json: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let vocab = json["model"]["vocab"].as_object_mut().unwrap();
    let (sat, ran) = (vocab["sat"].clone(), vocab["ran"].clone());
    vocab.insert("sat".into(), ran);
    vocab.insert("ran".into(), sat);
    std::fs::write(&path, serde_json::to_vec_pretty(&json).unwrap()).unwrap();
    let pipeline = Pipeline::new(encoder(&dir), Pooling::Mean, None).unwrap();
    assert_eq!(pipeline.embed(&["cat"]).unwrap(), cat_before, "a word the edit does not touch keeps its vector");
    seen.push(("tokenizer.json with sat and ran swapped", pipeline.id().clone()));
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
    config["layer_norm_eps"] = serde_json::json!(1e-5);
    std::fs::write(dir.join("config.json"), serde_json::to_vec(&config).unwrap()).unwrap();
    seen.push(("config.json", id_of(&dir)));
    for (i, (what, id)) in seen.iter().enumerate() {
        for (other, earlier) in &seen[..i] {
            assert_ne!(id, earlier, "{what} vs {other}");
            assert_ne!(id.fingerprint(), earlier.fingerprint(), "{what} vs {other}");
            // The weights never changed: an id of the weights alone could not tell these apart.
            assert_eq!(id.encoder.weights_sha256, earlier.encoder.weights_sha256);
        }
    }
}

#[test]
fn pooling_and_transform_are_part_of_the_id() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("tiny");
    write_tiny_model(&dir);
    let enc = encoder(&dir);
    let mut ids: Vec<PipelineId> = [Pooling::Mean, Pooling::Cls, Pooling::ClsBeforePooler]
        .into_iter()
        .map(|p| Pipeline::new(enc.clone(), p, None).unwrap().id().clone())
        .collect();
    ids.push(whitened(&dir, 4).id().clone());
    ids.push(whitened(&dir, 3).id().clone());
    for i in 0..ids.len() {
        for j in 0..i {
            assert_ne!(ids[i], ids[j], "{} vs {}", ids[i], ids[j]);
        }
    }
    // The same fit twice is the same transform.
    assert_eq!(whitened(&dir, 4).id(), &ids[3]);
}

#[test]
fn a_legacy_id_matches_the_same_weights_pooling_and_length_only() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("tiny");
    write_tiny_model(&dir);
    let current = id_of(&dir).encoder;
    let legacy_json = serde_json::json!({
        "model": "some-old-folder-name",
        "weights_sha256": current.weights_sha256,
        "pooling": "mean",
        "max_length": current.max_length,
    });
    let legacy: EncoderId = serde_json::from_value(legacy_json.clone()).unwrap();
    assert_eq!(legacy.files_sha256, None);
    assert_eq!(serde_json::to_value(&legacy).unwrap(), legacy_json, "a legacy id is written back as it was");
    assert_eq!(legacy, current);
    assert!(std::collections::HashSet::from([current.clone()]).contains(&legacy), "equal ids hash alike");
    for (what, differ) in [
        ("weights", EncoderId { weights_sha256: "0".repeat(64), ..legacy.clone() }),
        ("pooling", EncoderId { pooling: "cls".into(), ..legacy.clone() }),
        ("max length", EncoderId { max_length: 128, ..legacy.clone() }),
    ] {
        assert_ne!(differ, current, "{what}");
    }
    // Two current ids with different files differ even with the same weights.
    let other_files = EncoderId { files_sha256: Some("0".repeat(64)), ..current.clone() };
    assert_ne!(other_files, current);
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    let norm = |v: &[f32]| v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    dot / (norm(a) * norm(b))
}

/// The stored vectors are what `pipeline` computes today, and a search scores every document with
/// the cosine recomputed here, its own document first.
fn assert_same_vectors_and_search(collection: &Collection, pipeline: &Pipeline) {
    let stored: BTreeMap<&str, Vec<f32>> =
        DOCS.iter().map(|(id, _)| (*id, collection.get(id).unwrap().expect("the document is stored").vector)).collect();
    for (id, text) in DOCS {
        let fresh = pipeline.embed(&[text]).unwrap().remove(0);
        let diff = fresh.iter().zip(&stored[id]).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(diff < 1e-5, "{id}: stored and recomputed vectors differ by {diff}");
        let hits = collection.search_text_with(pipeline, text, &SearchParams::k(DOCS.len())).unwrap();
        assert_eq!(hits.len(), DOCS.len());
        for hit in &hits {
            let expected = cosine(&fresh, &stored[hit.id.as_str()]);
            assert!((hit.score as f64 - expected).abs() < 1e-4, "{text} → {}: {} vs {expected}", hit.id, hit.score);
        }
        assert_eq!(hits[0].id, *id, "{text}: {hits:?}");
        assert!(hits[0].score - hits[1].score > 1e-3, "{text}: {hits:?}");
    }
}

/// fixtures/store-d029160 was written by isovec at commit d029160 (before ids covered the model
/// files) with the tiny model in a folder named `tiny-bert`, by the `make_fixture` program in
/// this file's history (the commit that added the fixture): collections `raw` (mean pooling) and `whitened` (plus
/// the whitening in `whiten.safetensors`, fitted on the documents).
#[test]
fn a_store_written_before_content_ids_opens_and_searches() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/store-d029160");
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&fixture.join("store"), &tmp.path().join("store"));
    // Another folder name than the fixture's: the name does not matter.
    let model = tmp.path().join("renamed-model");
    write_tiny_model(&model);
    let raw = Pipeline::new(encoder(&model), Pooling::Mean, None).unwrap();
    let transform = Arc::new(Transform::load(&fixture.join("whiten.safetensors")).unwrap());
    assert_eq!(transform.encoder().files_sha256, None, "the fixture's transform has a legacy id");
    let whitened = Pipeline::new(encoder(&model), Pooling::Mean, Some(transform)).unwrap();

    let store = Store::open_existing(tmp.path().join("store")).unwrap();
    for (name, pipeline) in [("raw", &raw), ("whitened", &whitened)] {
        let collection = store.collection(name).unwrap();
        let stored = &collection.config().pipeline;
        assert_eq!((stored.encoder.model.as_str(), stored.encoder.files_sha256.as_ref()), ("tiny-bert", None));
        // No record of the pipeline yet: the error says what to pass.
        assert!(collection.spec().unwrap().is_none());
        let e = collection.pipeline().err().expect("no pipeline without a record").to_string();
        assert!(e.contains("no record of the pipeline") && e.contains("--pooling mean"), "{e}");
        assert_eq!(e.contains("--transform FILE"), name == "whitened", "{e}");
        // Given once, it is recorded.
        collection.check_pipeline(pipeline).unwrap();
        assert!(collection.spec().unwrap().is_some());
        assert_eq!(collection.count().unwrap(), DOCS.len() as u64);
        assert_same_vectors_and_search(&collection, pipeline);
        // Writing with today's pipeline goes to the same collection.
        let config = CollectionConfig::new(pipeline.dims(), pipeline.id().clone());
        let same = store.get_or_create_collection(name, config).unwrap();
        let doc =
            TextDoc { id: "new".into(), text: "the dog sat on the mat".into(), metadata: serde_json::Value::Null };
        assert_eq!(same.add_texts_with(pipeline, &[doc]).unwrap().inserted, 1);
        let written = same.get("new").unwrap().expect("the new document is stored").vector;
        assert_eq!(written, pipeline.embed(&["the dog sat on the mat"]).unwrap()[0]);
        assert_eq!(
            same.search_text_with(pipeline, "the dog sat on the mat", &SearchParams::k(1)).unwrap()[0].id,
            "new"
        );
    }
    // A model with other weights is still refused.
    let other = tmp.path().join("other-weights");
    write_tiny_model_variant(&other, 1);
    let wrong = Pipeline::new(encoder(&other), Pooling::Mean, None).unwrap();
    let e = store.collection("raw").unwrap().check_pipeline(&wrong).unwrap_err().to_string();
    assert!(e.contains("pipeline mismatch"), "{e}");
    // And the store reopens after the writes, each collection searchable with nothing said.
    store.close().unwrap();
    let store = Store::open_existing(tmp.path().join("store")).unwrap();
    assert_eq!(store.collection("raw").unwrap().count().unwrap(), DOCS.len() as u64 + 1);
    for (name, pipeline) in [("raw", &raw), ("whitened", &whitened)] {
        let c = store.collection(name).unwrap();
        let params = SearchParams::k(3);
        assert_eq!(
            c.search_text("the dog sat on the mat", &params).unwrap(),
            c.search_text_with(pipeline, "the dog sat on the mat", &params).unwrap()
        );
    }
}

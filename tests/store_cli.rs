//! The store commands end to end on the fixture corpus, with a test embedder.

mod common;

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use common::BagOfWords;
use isovec::cli::store_cmds::{self, CompactArgs, DeleteArgs, IndexArgs, SearchArgs, StatsArgs, StoreArgs, TargetArgs};
use isovec::store::{Filter, SearchParams, Store};
use isovec::Embedder;

fn corpus() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/corpus.jsonl")
}

fn target(dir: &Path) -> TargetArgs {
    TargetArgs::local(dir, "default")
}

#[test]
fn index_search_delete_compact_the_fixture_corpus() {
    let dir = tempfile::tempdir().unwrap();
    let store_dir = dir.path().join("store");
    let emb: Arc<dyn Embedder> = Arc::new(BagOfWords::new(256));
    let index = IndexArgs {
        target: target(&store_dir),
        file: corpus(),
        format: None,
        batch: 64,
        passages: false,
        passage_tokens: None,
        passage_stride: None,
    };
    store_cmds::index(&index, &Default::default(), &|_| Ok(emb.clone())).unwrap();
    // Indexing twice is idempotent.
    store_cmds::index(&index, &Default::default(), &|_| Ok(emb.clone())).unwrap();
    let search = SearchArgs {
        target: target(&store_dir),
        k: 3,
        ef: None,
        mode: "dense".into(),
        fusion: "convex".into(),
        alpha: None,
        depth: None,
        filter: Some("topic IN (space, ocean) AND year>=1995".into()),
        json: true,
        query: vec!["whales".into(), "sing".into()],
    };
    let load = |_: Option<&isovec::store::Collection>| Ok(emb.clone());
    store_cmds::search(&search, &Default::default(), &load).unwrap();
    store_cmds::search(
        &SearchArgs { mode: "hybrid".into(), alpha: Some("0.3".into()), ..search.clone() },
        &Default::default(),
        &load,
    )
    .unwrap();
    // A lexical search loads no model.
    let no_model = |_: Option<&isovec::store::Collection>| -> anyhow::Result<Arc<dyn Embedder>> {
        anyhow::bail!("the lexical search tried to load a model")
    };
    store_cmds::search(&SearchArgs { mode: "lexical".into(), ..search.clone() }, &Default::default(), &no_model)
        .unwrap();
    // Options that only shape a hybrid search, or a bad weight, are refused.
    let err =
        store_cmds::search(&SearchArgs { alpha: Some("0.3".into()), ..search.clone() }, &Default::default(), &load)
            .unwrap_err()
            .to_string();
    assert!(err.contains("--mode hybrid"), "{err}");
    let err = store_cmds::search(
        &SearchArgs { mode: "hybrid".into(), alpha: Some("2.0".into()), ..search.clone() },
        &Default::default(),
        &load,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("[0, 1]"), "{err}");
    // --alpha auto needs the fusion advise records; not a number, nor with another fusion.
    let hybrid = |alpha: &str, fusion: &str| SearchArgs {
        mode: "hybrid".into(),
        alpha: Some(alpha.into()),
        fusion: fusion.into(),
        ..search.clone()
    };
    for (args, says) in [
        (hybrid("auto", "convex"), "isovec advise"),
        (hybrid("auto", "rrf"), "leave out --fusion rrf"),
        (hybrid("most", "convex"), "or auto"),
    ] {
        let err = store_cmds::search(&args, &Default::default(), &load).unwrap_err().to_string();
        assert!(err.contains(says), "{err}");
    }
    store_cmds::stats(&StatsArgs { store: store_dir.clone(), collection: None, json: false }).unwrap();
    store_cmds::delete(&DeleteArgs { target: target(&store_dir), ids: vec!["ocean-02".into(), "nope".into()] })
        .unwrap();
    store_cmds::compact(&CompactArgs { target: StoreArgs { store: store_dir.clone(), collection: "default".into() } })
        .unwrap();

    let store = Store::open_existing(&store_dir).unwrap();
    let c = store.collection("default").unwrap();
    assert_eq!(c.count().unwrap(), 249);
    assert_eq!(c.stats().unwrap().tombstones, 0);
    let doc = c.get("music-03").unwrap().unwrap();
    assert_eq!(doc.metadata["topic"], "music");
    let hits = c.search_text_with(emb.as_ref(), "the drummer kept a steady beat", &SearchParams::k(1)).unwrap();
    assert_eq!(hits[0].id, "music-03");
    let f = Filter::parse("topic=cooking AND year<2005").unwrap();
    let hits = c.search_text_with(emb.as_ref(), "bread dough", &SearchParams::k(50).with_filter(f.clone())).unwrap();
    assert!(!hits.is_empty());
    assert!(hits.iter().all(|h| f.matches(&h.metadata)));
    let expected = std::fs::read_to_string(corpus())
        .unwrap()
        .lines()
        .filter(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            f.matches(&v["metadata"])
        })
        .count();
    assert_eq!(hits.len(), expected, "a selective filter returns every match when k allows");
    assert!(c
        .search_text_with(emb.as_ref(), "whales", &SearchParams::k(300))
        .unwrap()
        .iter()
        .all(|h| h.id != "ocean-02"));
}

#[test]
fn bad_lines_are_reported_with_their_number_and_their_batch_is_not_written() {
    let dir = tempfile::tempdir().unwrap();
    let emb: Arc<dyn Embedder> = Arc::new(BagOfWords::new(64));
    let file = dir.path().join("docs.jsonl");
    let mut f = std::fs::File::create(&file).unwrap();
    for i in 0..5 {
        writeln!(f, r#"{{"id": "ok-{i}", "text": "fine document {i}"}}"#).unwrap();
    }
    writeln!(f, r#"{{"id": "late", "text": "in the bad batch"}}"#).unwrap();
    writeln!(f, "{{this is not json").unwrap();
    drop(f);
    let store_dir = dir.path().join("s");
    let args = IndexArgs {
        target: target(&store_dir),
        file: file.clone(),
        format: None,
        batch: 4,
        passages: false,
        passage_tokens: None,
        passage_stride: None,
    };
    let err = format!("{:#}", store_cmds::index(&args, &Default::default(), &|_| Ok(emb.clone())).unwrap_err());
    assert!(err.contains(":7:") && err.contains("JSON"), "{err}");
    {
        let store = Store::open_existing(&store_dir).unwrap();
        let c = store.collection("default").unwrap();
        // Lines 1–4 formed a complete batch and were written; line 5–7's batch was not.
        assert_eq!(c.count().unwrap(), 4);
        assert!(c.get("late").unwrap().is_none());
    }
    // Invalid UTF-8 in a plain text file.
    let text = dir.path().join("docs.txt");
    std::fs::write(&text, b"first line\nsecond \xff\xfe line\n").unwrap();
    let args = IndexArgs {
        target: TargetArgs::local(&store_dir, "plain"),
        file: text,
        format: None,
        batch: 10,
        passages: false,
        passage_tokens: None,
        passage_stride: None,
    };
    let err = format!("{:#}", store_cmds::index(&args, &Default::default(), &|_| Ok(emb.clone())).unwrap_err());
    assert!(err.contains(":2:") && err.contains("UTF-8"), "{err}");
    // An empty text and a store that does not exist.
    let empty = dir.path().join("empty.jsonl");
    std::fs::write(&empty, "{\"id\": \"e\", \"text\": \"  \"}\n").unwrap();
    let args = IndexArgs {
        target: target(&store_dir),
        file: empty,
        format: None,
        batch: 10,
        passages: false,
        passage_tokens: None,
        passage_stride: None,
    };
    let err = format!("{:#}", store_cmds::index(&args, &Default::default(), &|_| Ok(emb.clone())).unwrap_err());
    assert!(err.contains(":1:") && err.contains("empty"), "{err}");
    let missing = SearchArgs {
        target: target(&dir.path().join("nothing")),
        k: 1,
        ef: None,
        mode: "dense".into(),
        fusion: "convex".into(),
        alpha: None,
        depth: None,
        filter: None,
        json: false,
        query: vec!["x".into()],
    };
    assert!(store_cmds::search(&missing, &Default::default(), &|_| Ok(emb.clone())).is_err());
}

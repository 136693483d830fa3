//! Documents by ids or filter, in-place updates, deletes by filter, many queries in one call, and
//! collections of vectors made outside isovec — checked against a brute-force computation here.

use isovec::store::{Doc, DocUpdate, Filter, ListParams, PassagesDoc, SearchMode, SearchParams, Store};
use serde_json::json;

/// A deterministic pseudo-random unit-free vector.
fn vector(seed: u64, dims: usize) -> Vec<f32> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..dims)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % 2001) as f32 / 1000.0 - 1.0
        })
        .collect()
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| f64::from(*x) * f64::from(*y)).sum();
    let n = |v: &[f32]| v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    dot / (n(a) * n(b))
}

const DIMS: usize = 12;
const WORDS: [&str; 4] = ["apple orchard", "river delta", "mountain pass", "city harbour"];

fn docs(n: u64) -> Vec<Doc> {
    (0..n)
        .map(|i| Doc {
            id: format!("d{i:03}"),
            text: format!("{} number {i}", WORDS[(i % 4) as usize]),
            metadata: json!({"group": i % 3, "even": i % 2 == 0}),
            vector: vector(i, DIMS),
        })
        .collect()
}

#[test]
fn external_vectors_are_stored_and_searched_by_vector_text_or_both() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let c = store.create_external_collection("mine", "my-model", DIMS).unwrap();
    let all = docs(60);
    c.upsert(&all).unwrap();
    // Texts cannot be encoded into these vectors: the error says what to do instead.
    let e = c.search_text("apple", &SearchParams::k(3)).unwrap_err().to_string();
    assert!(e.contains("outside isovec") && e.contains("query vector"), "{e}");
    let e = c
        .add_texts(&[isovec::store::TextDoc { id: "x".into(), text: "t".into(), metadata: json!(null) }])
        .unwrap_err()
        .to_string();
    assert!(e.contains("my-model"), "{e}");
    // A wrong dimension is refused, nothing written.
    let mut bad = all[0].clone();
    bad.vector.push(1.0);
    assert!(matches!(c.upsert(&[bad]), Err(isovec::Error::Dimension { expected: 12, found: 13 })));
    assert_eq!(c.count().unwrap(), 60);
    // Dense: the brute-force top 5 by cosine.
    let queries: Vec<Vec<f32>> = (1000..1008).map(|s| vector(s, DIMS)).collect();
    let params = SearchParams::k(5).with_ef(200);
    let batched = c.search_many(&queries, &params).unwrap();
    for (q, hits) in queries.iter().zip(&batched) {
        let mut truth: Vec<(f64, &str)> = all.iter().map(|d| (cosine(q, &d.vector), d.id.as_str())).collect();
        truth.sort_by(|a, b| b.0.total_cmp(&a.0));
        let ids: Vec<&str> = hits.iter().map(|h| h.id.as_str()).collect();
        let expected: Vec<&str> = truth.iter().take(5).map(|t| t.1).collect();
        assert_eq!(ids, expected);
        assert!((f64::from(hits[0].score) - truth[0].0).abs() < 1e-5);
        assert_eq!(hits, &c.search(q, &params).unwrap());
    }
    // A selective filter: an exact scan of the allowed vectors, equal to brute force among them.
    let group1 = SearchParams::k(5).with_filter("group=1".parse().unwrap());
    for q in &queries {
        let mut truth: Vec<(f64, &str)> =
            all.iter().filter(|d| d.metadata["group"] == 1).map(|d| (cosine(q, &d.vector), d.id.as_str())).collect();
        truth.sort_by(|a, b| b.0.total_cmp(&a.0));
        let hits = c.search(q, &group1).unwrap();
        assert_eq!(
            hits.iter().map(|h| h.id.as_str()).collect::<Vec<_>>(),
            truth.iter().take(5).map(|t| t.1).collect::<Vec<_>>()
        );
        assert!((f64::from(hits[0].score) - truth[0].0).abs() < 1e-5);
    }
    // Lexical on the texts, and hybrid with a vector and its text.
    let lexical = c.search_texts(&["harbour"], &SearchParams::k(100).with_mode(SearchMode::Lexical)).unwrap();
    assert_eq!(lexical[0].len(), 15);
    assert!(lexical[0].iter().all(|h| h.text.contains("harbour")));
    let hybrid = SearchParams::k(3).with_mode(SearchMode::Hybrid);
    let both = c.search_vectors_and_texts(&queries[..2], &["harbour", "river"], &hybrid).unwrap();
    assert_eq!(both[0], c.search_hybrid(&queries[0], "harbour", &hybrid).unwrap());
    assert!(c.search_vectors_and_texts(&queries[..2], &["harbour"], &hybrid).is_err());
    // Reopened: the same kind of collection, and only the same model and dimension opens it.
    drop(c);
    store.close().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    assert_eq!(store.get_or_create_external_collection("mine", "my-model", DIMS).unwrap().count().unwrap(), 60);
    let e = store.get_or_create_external_collection("mine", "other", DIMS).err().unwrap().to_string();
    assert!(e.contains("my-model") && e.contains("other"), "{e}");
    assert!(store.get_or_create_external_collection("mine", "my-model", 8).is_err());
}

#[test]
fn documents_by_ids_filter_pages_updates_and_deletes() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let c = store.create_external_collection("mine", "m", DIMS).unwrap();
    let all = docs(30);
    c.upsert(&all).unwrap();
    // By ids, in the order asked, None for the missing.
    let got = c.get_many(&["d005", "nope", "d001"]).unwrap();
    assert_eq!(got[0].as_ref().unwrap().text, all[5].text);
    assert!(got[1].is_none());
    assert_eq!(got[2].as_ref().unwrap().metadata, all[1].metadata);
    // By filter, in id order, paged.
    let filter: Filter = r#"{"group": 1, "even": {"$eq": true}}"#.parse().unwrap();
    let expected: Vec<&str> =
        all.iter().filter(|d| d.metadata["group"] == 1 && d.metadata["even"] == true).map(|d| d.id.as_str()).collect();
    let listed = c.list(&ListParams { filter: Some(filter.clone()), ..Default::default() }).unwrap();
    assert_eq!(listed.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(), expected);
    let page = c.list(&ListParams { filter: Some(filter.clone()), offset: 1, limit: Some(2) }).unwrap();
    assert_eq!(page.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(), expected[1..3]);
    assert_eq!(c.list(&ListParams { limit: Some(0), ..Default::default() }).unwrap(), vec![]);
    // Update: metadata merged (null removes a key), text and vector replaced, the rest kept.
    let new_vector = vector(777, DIMS);
    c.update(&[
        DocUpdate {
            id: "d002".into(),
            metadata: Some(json!({"group": 9, "even": null, "new": "yes"})),
            ..Default::default()
        },
        DocUpdate {
            id: "d003".into(),
            text: Some("a quiet lighthouse".into()),
            vector: Some(new_vector.clone()),
            ..Default::default()
        },
    ])
    .unwrap();
    let d2 = c.get("d002").unwrap().unwrap();
    assert_eq!((d2.metadata.clone(), d2.text.as_str()), (json!({"group": 9, "new": "yes"}), all[2].text.as_str()));
    assert!(cosine(&d2.vector, &all[2].vector) > 0.999_999);
    let d3 = c.get("d003").unwrap().unwrap();
    assert_eq!(d3.text, "a quiet lighthouse");
    assert!(cosine(&d3.vector, &new_vector) > 0.999_999);
    assert_eq!(c.search_lexical("lighthouse", &SearchParams::k(3)).unwrap()[0].id, "d003");
    assert_eq!(c.search(&new_vector, &SearchParams::k(1)).unwrap()[0].id, "d003");
    // A missing id changes nothing; a new text without a vector cannot be encoded here.
    let e = c
        .update(&[
            DocUpdate { id: "d004".into(), metadata: Some(json!({"x": 1})), ..Default::default() },
            DocUpdate { id: "gone".into(), ..Default::default() },
        ])
        .unwrap_err()
        .to_string();
    assert!(e.contains("gone") && e.contains("upsert"), "{e}");
    assert_eq!(c.get("d004").unwrap().unwrap().metadata, all[4].metadata);
    assert!(c.update(&[DocUpdate { id: "d004".into(), text: Some("x".into()), ..Default::default() }]).is_err());
    // Delete by filter.
    let group0: Filter = "group=0".parse().unwrap();
    let n0 = all.iter().filter(|d| d.metadata["group"] == 0).count();
    assert_eq!(c.delete_where(&group0).unwrap(), n0);
    assert_eq!(c.count().unwrap() as usize, 30 - n0);
    assert!(c.list(&ListParams { filter: Some(group0), ..Default::default() }).unwrap().is_empty());
    // A document indexed as passages is listed once, with all its vectors.
    let passages = PassagesDoc {
        id: "p".into(),
        text: "in three parts".into(),
        metadata: json!({"group": 7}),
        vectors: vec![vector(1, DIMS), vector(2, DIMS), vector(3, DIMS)],
    };
    c.upsert_passages(std::slice::from_ref(&passages)).unwrap();
    let group7: Filter = "group=7".parse().unwrap();
    let listed = c.list(&ListParams { filter: Some(group7.clone()), ..Default::default() }).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!((listed[0].id.as_str(), listed[0].vectors.len()), ("p", 3));
    assert_eq!(c.delete_where(&group7).unwrap(), 1);
}

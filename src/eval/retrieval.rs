//! BEIR retrieval benchmarks: loading a dataset and scoring rankings as BEIR/pytrec_eval do.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::text_file::read_lines;
use crate::{Error, Result};

/// A document of a BEIR corpus.
#[derive(Clone, Debug, PartialEq)]
pub struct BeirDoc {
    /// Its `_id`.
    pub id: String,
    /// Its title (empty when the corpus has none).
    pub title: String,
    /// Its body.
    pub text: String,
}

/// A BEIR query.
#[derive(Clone, Debug, PartialEq)]
pub struct BeirQuery {
    /// Its `_id`.
    pub id: String,
    /// Its text.
    pub text: String,
}

/// Relevance judgements: query id → (doc id → graded relevance).
pub type Qrels = HashMap<String, HashMap<String, i32>>;

/// One BEIR dataset split: the corpus, the judged queries and their judgements.
#[derive(Clone, Debug)]
pub struct BeirData {
    /// Every document, in `corpus.jsonl` order.
    pub corpus: Vec<BeirDoc>,
    /// Only the queries that have judgements in the split, in `queries.jsonl` order.
    pub queries: Vec<BeirQuery>,
    /// The split's judgements.
    pub qrels: Qrels,
}

/// Loads a BEIR folder: `corpus.jsonl` (or `corpus.jsonl.gz`), `queries.jsonl` and
/// `qrels/<split>.tsv`.
pub fn load_beir(dir: &Path, split: &str) -> Result<BeirData> {
    let qrels_path = dir.join("qrels").join(format!("{split}.tsv"));
    if !qrels_path.is_file() && dir.join("qrels").is_dir() {
        return Err(Error::InvalidInput(format!(
            "{}: no such split; available: {}",
            qrels_path.display(),
            available_splits(&dir.join("qrels")).join(", ")
        )));
    }
    let qrels = load_qrels(&qrels_path)?;
    let plain = dir.join("corpus.jsonl");
    let corpus_path = if plain.is_file() { plain } else { dir.join("corpus.jsonl.gz") };
    let corpus = read_jsonl(&corpus_path)?
        .into_iter()
        .map(|(line, v)| {
            Ok(BeirDoc {
                id: json_id(&corpus_path, line, &v)?,
                title: json_text(&corpus_path, line, &v, "title", false)?,
                text: json_text(&corpus_path, line, &v, "text", true)?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let queries_path = dir.join("queries.jsonl");
    let mut queries = Vec::new();
    for (line, v) in read_jsonl(&queries_path)? {
        let id = json_id(&queries_path, line, &v)?;
        if qrels.contains_key(&id) {
            let text = json_text(&queries_path, line, &v, "text", true)?;
            queries.push(BeirQuery { id, text });
        }
    }
    Ok(BeirData { corpus, queries, qrels })
}

fn available_splits(qrels_dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(qrels_dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.strip_suffix(".tsv").map(str::to_string)
        })
        .collect();
    names.sort();
    names
}

/// Reads `query-id TAB corpus-id TAB score` lines; the first line is skipped when it is a
/// header (its score field is not an integer), as BEIR's files have one.
fn load_qrels(path: &Path) -> Result<Qrels> {
    let mut qrels: Qrels = HashMap::new();
    for (i, text) in read_lines(path)?.iter().enumerate() {
        if text.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = text.split('\t').collect();
        let score = fields.get(2).map(|s| s.trim().parse::<i32>());
        match (fields.len(), score) {
            (n, Some(Ok(score))) if n >= 3 => {
                qrels.entry(fields[0].trim().to_string()).or_default().insert(fields[1].trim().to_string(), score);
            }
            _ if i == 0 => continue,
            _ => {
                return Err(Error::Data {
                    path: path.to_path_buf(),
                    line: i + 1,
                    message: "expected query-id TAB corpus-id TAB integer score".to_string(),
                })
            }
        }
    }
    Ok(qrels)
}

/// Non-blank lines of a JSON-lines file, parsed, with their 1-based line numbers.
fn read_jsonl(path: &Path) -> Result<Vec<(usize, serde_json::Value)>> {
    read_lines(path)?
        .iter()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).map(|v| (i + 1, v)).map_err(|e| Error::Data {
                path: path.to_path_buf(),
                line: i + 1,
                message: format!("not a JSON object: {e}"),
            })
        })
        .collect()
}

/// The `_id` field, a string or a number.
fn json_id(path: &Path, line: usize, v: &serde_json::Value) -> Result<String> {
    match v.get("_id") {
        Some(serde_json::Value::String(s)) => Ok(s.clone()),
        Some(serde_json::Value::Number(n)) => Ok(n.to_string()),
        _ => {
            Err(Error::Data { path: path.to_path_buf(), line, message: "missing `_id` (string or number)".to_string() })
        }
    }
}

/// A string field; a missing or null optional field is empty.
fn json_text(path: &Path, line: usize, v: &serde_json::Value, key: &str, required: bool) -> Result<String> {
    match v.get(key) {
        Some(serde_json::Value::String(s)) => Ok(s.clone()),
        None | Some(serde_json::Value::Null) if !required => Ok(String::new()),
        _ => Err(Error::Data { path: path.to_path_buf(), line, message: format!("missing string field `{key}`") }),
    }
}

/// The first `k` distinct ids of a ranking (a repeated id counts once, at its first rank).
fn top_k<S: AsRef<str>>(ranking: &[S], k: usize) -> Vec<&str> {
    let mut seen = HashSet::new();
    ranking.iter().map(AsRef::as_ref).filter(|id| seen.insert(*id)).take(k).collect()
}

/// Graded relevance of a doc; unjudged and negative judgements count as 0.
fn gain(judged: &HashMap<String, i32>, id: &str) -> f64 {
    judged.get(id).map_or(0.0, |&r| r.max(0) as f64)
}

/// nDCG@k as pytrec_eval's `ndcg_cut`: gain = relevance, discount log2(rank + 1), ideal DCG
/// from the judged relevances sorted in descending order; 0 when nothing is relevant.
pub fn ndcg_at_k<S: AsRef<str>>(ranking: &[S], judged: &HashMap<String, i32>, k: usize) -> f64 {
    let discount = |rank0: usize| 1.0 / ((rank0 + 2) as f64).log2();
    let dcg: f64 = top_k(ranking, k).iter().enumerate().map(|(i, id)| gain(judged, id) * discount(i)).sum();
    let mut ideal: Vec<f64> = judged.values().map(|&r| r.max(0) as f64).collect();
    ideal.sort_by(|a, b| b.total_cmp(a));
    let idcg: f64 = ideal.iter().take(k).enumerate().map(|(i, g)| g * discount(i)).sum();
    if idcg > 0.0 {
        dcg / idcg
    } else {
        0.0
    }
}

/// MRR@k as BEIR: 1 / rank of the first relevant (relevance > 0) doc in the top k, else 0.
pub fn mrr_at_k<S: AsRef<str>>(ranking: &[S], judged: &HashMap<String, i32>, k: usize) -> f64 {
    top_k(ranking, k).iter().position(|id| gain(judged, id) > 0.0).map_or(0.0, |i| 1.0 / (i + 1) as f64)
}

/// Recall@k as pytrec_eval: relevant (relevance > 0) docs in the top k / all relevant docs;
/// 0 when the query has no relevant doc.
pub fn recall_at_k<S: AsRef<str>>(ranking: &[S], judged: &HashMap<String, i32>, k: usize) -> f64 {
    let relevant = judged.values().filter(|&&r| r > 0).count();
    if relevant == 0 {
        return 0.0;
    }
    let found = top_k(ranking, k).iter().filter(|id| gain(judged, id) > 0.0).count();
    found as f64 / relevant as f64
}

/// The metrics BEIR papers report, averaged over queries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RetrievalMetrics {
    /// nDCG@10 (graded relevance, log2 discount).
    pub ndcg10: f64,
    /// Mean reciprocal rank of the first relevant document within the top 10.
    pub mrr10: f64,
    /// Share of the relevant documents found in the top 1.
    pub recall1: f64,
    /// … in the top 5.
    pub recall5: f64,
    /// … in the top 10.
    pub recall10: f64,
    /// … in the top 100.
    pub recall100: f64,
    /// Number of queries averaged over (those with both a ranking and judgements).
    pub queries: usize,
}

/// Averages the metrics over the queries that have both a ranking in `runs` and judgements in
/// `qrels`, as pytrec_eval does (a query without a ranking is left out, not scored 0).
pub fn evaluate(runs: &HashMap<String, Vec<String>>, qrels: &Qrels) -> RetrievalMetrics {
    let mut sum = RetrievalMetrics::default();
    for (query, ranking) in runs {
        let Some(judged) = qrels.get(query) else {
            continue;
        };
        sum.ndcg10 += ndcg_at_k(ranking, judged, 10);
        sum.mrr10 += mrr_at_k(ranking, judged, 10);
        sum.recall1 += recall_at_k(ranking, judged, 1);
        sum.recall5 += recall_at_k(ranking, judged, 5);
        sum.recall10 += recall_at_k(ranking, judged, 10);
        sum.recall100 += recall_at_k(ranking, judged, 100);
        sum.queries += 1;
    }
    if sum.queries == 0 {
        return sum;
    }
    let n = sum.queries as f64;
    RetrievalMetrics {
        ndcg10: sum.ndcg10 / n,
        mrr10: sum.mrr10 / n,
        recall1: sum.recall1 / n,
        recall5: sum.recall5 / n,
        recall10: sum.recall10 / n,
        recall100: sum.recall100 / n,
        queries: sum.queries,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::data_dir;

    fn judged(pairs: &[(&str, i32)]) -> HashMap<String, i32> {
        pairs.iter().map(|(d, r)| (d.to_string(), *r)).collect()
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    // Ranking d1..d5; d2 rel 2 (rank 2), d4 rel 1 (rank 4), d9 rel 3 (not retrieved), d3 rel 0.
    fn example() -> (Vec<String>, HashMap<String, i32>) {
        let ranking = ["d1", "d2", "d3", "d4", "d5"].map(String::from).to_vec();
        (ranking, judged(&[("d2", 2), ("d4", 1), ("d9", 3), ("d3", 0)]))
    }

    #[test]
    fn ndcg_graded_hand_computed() {
        let (ranking, q) = example();
        let l3 = 3f64.log2();
        // DCG@5 = 2/log2(3) + 1/log2(5); IDCG@5 from (3,2,1,0) = 3/1 + 2/log2(3) + 1/log2(4)
        let want5 = (2.0 / l3 + 1.0 / 5f64.log2()) / (3.0 + 2.0 / l3 + 0.5);
        assert!(close(ndcg_at_k(&ranking, &q, 5), want5));
        // @2: DCG = 2/log2(3); IDCG = 3 + 2/log2(3)
        assert!(close(ndcg_at_k(&ranking, &q, 2), (2.0 / l3) / (3.0 + 2.0 / l3)));
        assert_eq!(ndcg_at_k(&ranking, &q, 1), 0.0);
        // The ideal order scores 1.
        assert!(close(ndcg_at_k(&["d9", "d2", "d4"], &q, 10), 1.0));
    }

    #[test]
    fn mrr_and_recall_hand_computed() {
        let (ranking, q) = example();
        assert_eq!(mrr_at_k(&ranking, &q, 1), 0.0);
        assert_eq!(mrr_at_k(&ranking, &q, 2), 0.5);
        assert_eq!(mrr_at_k(&ranking, &q, 10), 0.5);
        // relevant = {d2, d4, d9}; d3 (rel 0) is judged but not relevant
        assert_eq!(recall_at_k(&ranking, &q, 1), 0.0);
        assert!(close(recall_at_k(&ranking, &q, 2), 1.0 / 3.0));
        assert!(close(recall_at_k(&ranking, &q, 5), 2.0 / 3.0));
        assert!(close(recall_at_k(&ranking, &q, 100), 2.0 / 3.0));
    }

    #[test]
    fn repeated_ids_count_once() {
        let q = judged(&[("a", 1), ("b", 1)]);
        // dedup gives (a, c, b): b at rank 3, so recall@2 = 1/2 and recall@3 = 1
        let ranking = ["a", "a", "c", "b"];
        assert!(close(recall_at_k(&ranking, &q, 2), 0.5));
        assert!(close(recall_at_k(&ranking, &q, 3), 1.0));
        assert!(ndcg_at_k(&ranking, &q, 10) <= 1.0);
    }

    #[test]
    fn evaluate_averages_over_ranked_judged_queries() {
        let (ranking, q) = example();
        let mut qrels: Qrels = HashMap::new();
        qrels.insert("q1".into(), q.clone());
        qrels.insert("q2".into(), judged(&[("x", 1)]));
        qrels.insert("q3".into(), judged(&[("y", 1)])); // no ranking: left out
        let mut runs = HashMap::new();
        runs.insert("q1".to_string(), ranking.clone());
        runs.insert("q2".to_string(), vec!["x".to_string()]);
        runs.insert("unjudged".to_string(), vec!["x".to_string()]);
        let m = evaluate(&runs, &qrels);
        assert_eq!(m.queries, 2);
        assert!(close(m.ndcg10, (ndcg_at_k(&ranking, &q, 10) + 1.0) / 2.0));
        assert!(close(m.mrr10, (0.5 + 1.0) / 2.0));
        assert!(close(m.recall1, (0.0 + 1.0) / 2.0));
        assert!(close(m.recall5, (2.0 / 3.0 + 1.0) / 2.0));
        assert_eq!(evaluate(&HashMap::new(), &qrels).queries, 0);
    }

    #[test]
    fn loads_a_small_beir_folder_and_rejects_bad_lines() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir(d.join("qrels")).unwrap();
        std::fs::write(
            d.join("corpus.jsonl"),
            "{\"_id\": \"d1\", \"title\": \"T\", \"text\": \"one\"}\n{\"_id\": 7, \"text\": \"two\"}\n",
        )
        .unwrap();
        std::fs::write(
            d.join("queries.jsonl"),
            "{\"_id\": \"q1\", \"text\": \"first\"}\n{\"_id\": \"q2\", \"text\": \"unjudged\"}\n",
        )
        .unwrap();
        std::fs::write(d.join("qrels/test.tsv"), "query-id\tcorpus-id\tscore\nq1\td1\t2\nq1\t7\t0\n").unwrap();
        let data = load_beir(d, "test").unwrap();
        assert_eq!(data.corpus.len(), 2);
        assert_eq!(data.corpus[1].id, "7");
        assert_eq!(data.corpus[1].title, "");
        assert_eq!(data.queries.len(), 1);
        assert_eq!(data.qrels["q1"]["d1"], 2);
        let msg = load_beir(d, "dev").unwrap_err().to_string();
        assert!(msg.contains("test"), "{msg}");
        std::fs::write(d.join("qrels/test.tsv"), "query-id\tcorpus-id\tscore\nq1\td1\n").unwrap();
        match load_beir(d, "test").unwrap_err() {
            Error::Data { line, .. } => assert_eq!(line, 2),
            other => panic!("unexpected {other}"),
        }
        std::fs::write(d.join("qrels/test.tsv"), "q1\td1\t1\n").unwrap();
        std::fs::write(d.join("queries.jsonl"), "{\"_id\": \"q1\", \"text\": \"ok\"}\n{broken\n").unwrap();
        match load_beir(d, "test").unwrap_err() {
            Error::Data { line, .. } => assert_eq!(line, 2),
            other => panic!("unexpected {other}"),
        }
    }

    #[test]
    fn loads_scifact() {
        let Some(data) = data_dir("retrieval/scifact") else { return };
        let sci = load_beir(&data.join("retrieval/scifact"), "train").unwrap();
        assert_eq!(sci.corpus.len(), 5183);
        assert_eq!(sci.queries.len(), 809);
        assert_eq!(sci.qrels.len(), 809);
        assert_eq!(sci.qrels.values().map(HashMap::len).sum::<usize>(), 919);
        let ids: HashSet<&str> = sci.corpus.iter().map(|d| d.id.as_str()).collect();
        assert_eq!(ids.len(), 5183, "document ids are unique");
        assert!(sci.qrels.values().flat_map(|j| j.keys()).all(|d| ids.contains(d.as_str())));
        assert!(sci.corpus.iter().all(|d| !d.title.is_empty() && !d.text.is_empty()));
    }
}

//! Adapting an encoder to a corpus without labels: unsupervised SimCSE on the sentences of a
//! store collection's own texts, with the collection's pooling, validated on pseudo-queries cut
//! out of the same texts ([`crate::eval::pseudo_queries`]), never on relevance labels.
//!
//! Invariants, enforced here and tested:
//! - the documents that serve as pseudo-queries are held out of the training sentences, so the
//!   model never trains on the text it is validated on (neither the query cut out nor the rest
//!   of its document);
//! - the training sentences are the other documents' sentences
//!   ([`crate::eval::pseudo_queries::sentences`]) of at least `min_words` words, each once;
//! - the same texts, configuration and seed give the same sentences, queries and validation
//!   documents.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use rand::seq::SliceRandom;
use rand::SeedableRng;

use super::simcse::{PseudoScores, Trainer, Validated, Validation};
use crate::encoder::{Pooling, TextTokenizer};
use crate::eval::pseudo_queries::{self, PseudoConfig, PseudoSet};
use crate::eval::retrieval::{self, BeirDoc, Qrels};
use crate::store::{Collection, ListParams, Store};
use crate::vector::{exact_top_k, normalize};
use crate::{Error, Result};

/// How a collection's texts become training sentences and a pseudo-query validation set.
#[derive(Clone, Debug, PartialEq)]
pub struct AdaptConfig {
    /// Pseudo-queries wanted (fewer if too few documents can give one).
    pub queries: usize,
    /// Documents the pseudo-queries are searched in at each evaluation: every queried document
    /// plus a fixed random sample of the others, this many in all (the whole collection if it
    /// is smaller). A sample keeps an evaluation affordable on a CPU.
    pub documents: usize,
    /// Words a sentence needs to be trained on (shorter fragments, such as headings, are
    /// dropped); also the words a sentence needs to be an inverse-cloze pseudo-query.
    pub min_words: usize,
    /// Seed of the pseudo-queries and of the document sample.
    pub seed: u64,
}

impl Default for AdaptConfig {
    fn default() -> Self {
        AdaptConfig { queries: 300, documents: 1000, min_words: 5, seed: 42 }
    }
}

/// A collection's texts and what its recorded pipeline says about encoding them.
#[derive(Clone, Debug)]
pub struct CollectionTexts {
    /// The documents that have text, in id order (title empty: a stored text is whole).
    pub documents: Vec<BeirDoc>,
    /// Documents left out because their text is empty (vectors stored without text).
    pub without_text: usize,
    /// The folder of the collection's model.
    pub model_dir: PathBuf,
    /// The collection's pooling.
    pub pooling: Pooling,
    /// The collection's maximum length in tokens (documents are truncated there).
    pub max_length: usize,
    /// The kind of the collection's post-transform, if it has one (training and validation use
    /// the encoder alone: a transform fitted on the old vectors does not fit the new ones).
    pub transform: Option<String>,
}

/// Opens the store in `store_dir` (which must exist) and reads its collection `name`.
pub fn open_collection(store_dir: &Path, name: &str) -> Result<CollectionTexts> {
    let store = Store::open_existing(store_dir)?;
    read_collection(&store.collection(name)?)
}

/// The texts of a collection and its recorded encoder, model folder included; an error if the
/// collection has no text or no recorded isovec pipeline.
pub fn read_collection(collection: &Collection) -> Result<CollectionTexts> {
    let name = collection.name().to_string();
    let spec = collection.spec()?.ok_or_else(|| {
        Error::InvalidInput(format!(
            "collection {name:?} has no record of the pipeline that made its vectors, so its model and pooling are \
             unknown: train on its texts with --corpus FILE and --model DIR instead"
        ))
    })?;
    let encoded = spec.encoded().map_err(|e| Error::InvalidInput(format!("collection {name:?}: {e}")))?;
    let encoder = &encoded.id.encoder;
    if !encoder.prefixes.is_empty() {
        return Err(Error::InvalidInput(format!(
            "collection {name:?} puts prefixes before its texts ({:?}); adapting such a model is not supported yet",
            encoder.prefixes
        )));
    }
    let pooling: Pooling = encoder.pooling.parse()?;
    let model_dir = crate::pipeline::find_model(encoder, Some(&encoded.model), None)?;
    let mut documents = Vec::new();
    let mut without_text = 0;
    for doc in collection.list(&ListParams::default())? {
        if doc.text.trim().is_empty() {
            without_text += 1;
        } else {
            documents.push(BeirDoc { id: doc.id, title: String::new(), text: doc.text });
        }
    }
    if documents.is_empty() {
        return Err(Error::InvalidInput(format!(
            "collection {name:?} has no texts to train on ({without_text} documents, none with text)"
        )));
    }
    Ok(CollectionTexts {
        documents,
        without_text,
        model_dir,
        pooling,
        max_length: encoder.max_length,
        transform: encoded.id.transform.as_ref().map(|t| t.kind.clone()),
    })
}

/// Training sentences and a pseudo-query validation set made from one corpus.
#[derive(Clone, Debug)]
pub struct Adaptation {
    /// The sentences to train on: those of the documents that serve no pseudo-query.
    pub sentences: Vec<String>,
    /// The pseudo-queries and the corpus they are searched in (queried documents without the
    /// query's text).
    pub pseudo: PseudoSet,
    /// Documents held out of training because they serve a pseudo-query.
    pub held_out: usize,
    /// Sentences dropped for having fewer than `min_words` words.
    pub fragments: usize,
    /// Sentences dropped because an identical one was already kept.
    pub duplicates: usize,
}

/// Cuts pseudo-queries out of `documents` and takes the other documents' sentences for training.
pub fn adaptation_data(documents: &[BeirDoc], config: &AdaptConfig) -> Result<Adaptation> {
    let pseudo = pseudo_queries::build(
        documents,
        &PseudoConfig {
            queries: config.queries,
            seed: config.seed,
            min_sentence_words: config.min_words,
            ..PseudoConfig::default()
        },
    )?;
    // Held out: every document that is some query's relevant document.
    let held: HashSet<&str> = pseudo.data.qrels.values().flat_map(|r| r.keys().map(String::as_str)).collect();
    let mut seen = HashSet::new();
    let (mut sentences, mut fragments, mut duplicates) = (Vec::new(), 0, 0);
    for doc in documents.iter().filter(|d| !held.contains(d.id.as_str())) {
        for s in [doc.title.as_str()]
            .into_iter()
            .filter(|t| !t.trim().is_empty())
            .chain(pseudo_queries::sentences(&doc.text))
        {
            let s = s.trim();
            if s.split_whitespace().count() < config.min_words {
                fragments += 1;
            } else if !seen.insert(s) {
                duplicates += 1;
            } else {
                sentences.push(s.to_string());
            }
        }
    }
    if sentences.len() < 2 {
        return Err(Error::InvalidInput(format!(
            "{} sentence(s) of {} words or more outside the {} documents held out for pseudo-queries: too few to \
             train on",
            sentences.len(),
            config.min_words,
            held.len()
        )));
    }
    let held_out = held.len();
    Ok(Adaptation { sentences, pseudo, held_out, fragments, duplicates })
}

/// A pseudo-query set prepared for repeated evaluation: queries and documents tokenized once at
/// the collection's maximum length, scored by exact cosine search with the current weights.
pub struct PseudoDev {
    query_ids: Vec<String>,
    queries: Vec<Vec<u32>>,
    doc_ids: Vec<String>,
    docs: Vec<Vec<u32>>,
    qrels: Qrels,
    batch_size: usize,
}

impl PseudoDev {
    /// Prepares `set` for `trainer`: every queried document and a sample of the others, seeded,
    /// `documents` in all (see [`AdaptConfig::documents`]), tokenized at `max_length`.
    pub fn new(trainer: &Trainer, set: &PseudoSet, documents: usize, max_length: usize, seed: u64) -> Result<Self> {
        let positions = trainer.bert_config().max_position_embeddings;
        if max_length == 0 || max_length > positions {
            return Err(Error::InvalidInput(format!(
                "pseudo-query length {max_length}: must be between 1 and the model's {positions} positions"
            )));
        }
        let relevant: HashSet<&str> = set.data.qrels.values().flat_map(|r| r.keys().map(String::as_str)).collect();
        let (mut chosen, mut others): (Vec<usize>, Vec<usize>) =
            (0..set.data.corpus.len()).partition(|&i| relevant.contains(set.data.corpus[i].id.as_str()));
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ 0x5053_4555_444f_4445);
        others.shuffle(&mut rng);
        chosen.extend(others.into_iter().take(documents.saturating_sub(chosen.len())));
        chosen.sort_unstable();
        let tokenizer = TextTokenizer::load(trainer.model_dir(), max_length)?;
        let doc_texts: Vec<String> = chosen.iter().map(|&i| doc_text(&set.data.corpus[i])).collect();
        let doc_refs: Vec<&str> = doc_texts.iter().map(String::as_str).collect();
        let query_refs: Vec<&str> = set.data.queries.iter().map(|q| q.text.as_str()).collect();
        Ok(PseudoDev {
            query_ids: set.data.queries.iter().map(|q| q.id.clone()).collect(),
            queries: tokenizer.tokenize(&query_refs)?.into_iter().map(|t| t.ids).collect(),
            doc_ids: chosen.iter().map(|&i| set.data.corpus[i].id.clone()).collect(),
            docs: tokenizer.tokenize(&doc_refs)?.into_iter().map(|t| t.ids).collect(),
            qrels: set.data.qrels.clone(),
            batch_size: 32,
        })
    }

    /// Number of pseudo-queries.
    pub fn queries(&self) -> usize {
        self.queries.len()
    }

    /// Number of documents searched.
    pub fn documents(&self) -> usize {
        self.docs.len()
    }

    /// The ids of the documents searched, in corpus order.
    pub fn document_ids(&self) -> &[String] {
        &self.doc_ids
    }
}

/// A document's text as a collection would hold it (title, then body).
fn doc_text(doc: &BeirDoc) -> String {
    match (doc.title.trim(), doc.text.trim()) {
        ("", text) => text.to_string(),
        (title, text) => format!("{title} {text}"),
    }
}

impl Validation for PseudoDev {
    fn describe(&self) -> String {
        format!("scoring {} pseudo-queries over {} documents…", self.queries.len(), self.docs.len())
    }

    fn validate(&self, trainer: &Trainer) -> Result<Validated> {
        let unit = |mut vectors: Vec<Vec<f32>>| {
            vectors.iter_mut().for_each(|v| {
                normalize(v);
            });
            vectors
        };
        let docs = unit(trainer.encode_ids(&self.docs, self.batch_size)?);
        let queries = unit(trainer.encode_ids(&self.queries, self.batch_size)?);
        let runs: HashMap<String, Vec<String>> = self
            .query_ids
            .iter()
            .zip(&queries)
            .map(|(id, q)| {
                let top = exact_top_k(q, 10, docs.iter().enumerate().map(|(i, d)| (i as u64, d.as_slice())));
                (id.clone(), top.iter().map(|s| self.doc_ids[s.internal_id as usize].clone()).collect())
            })
            .collect();
        let m = retrieval::evaluate(&runs, &self.qrels);
        Ok(Validated::PseudoQueries(PseudoScores { ndcg10: m.ndcg10, recall10: m.recall10 }))
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::sync::Arc;

    use candle_core::{Device, Tensor};

    use super::*;
    use crate::encoder::{Encoder, EncoderOptions};
    use crate::store::{Doc, TextDoc};
    use crate::test_support::tiny_model::{write_tiny_model, VOCAB};
    use crate::train::{Evaluation, ModelInit, SimcseConfig, TrainingData};
    use crate::Pipeline;

    /// Sentence `j` of document `i`: six words of the tiny model's vocabulary, capitalised and
    /// ended by a full stop, different for every (i, j).
    fn sentence(i: usize, j: usize) -> String {
        let words = &VOCAB[5..];
        let w: Vec<&str> = (0..6).map(|k| words[(i * 7 + j * 3 + k * k * 5 + k) % words.len()]).collect();
        let mut s = format!("{} {} {} {}", w[0], w[1], w[2], w[3]);
        s = s[..1].to_uppercase() + &s[1..];
        format!("{s} {} {} number{i}x{j}.", w[4], w[5])
    }

    /// Four sentences of six words and a two-word fragment.
    fn text(i: usize) -> String {
        let mut parts: Vec<String> = (0..4).map(|j| sentence(i, j)).collect();
        parts.insert(2, "Hot sea.".into());
        parts.join(" ")
    }

    /// A store with a collection `docs` of `n` documents, mean pooling over the tiny model.
    fn store_with_docs(dir: &Path, n: usize) -> (Store, PathBuf) {
        let model = dir.join("tiny");
        write_tiny_model(&model);
        let encoder = Arc::new(Encoder::load(&model, EncoderOptions::default()).unwrap());
        let pipeline = Pipeline::new(encoder, Pooling::Mean, None).unwrap();
        let store = Store::open(dir.join("store")).unwrap();
        let c = store.create_collection_for("docs", &pipeline).unwrap();
        let docs: Vec<TextDoc> = (0..n)
            .map(|i| TextDoc { id: format!("d{i:02}"), text: text(i), metadata: serde_json::Value::Null })
            .collect();
        c.add_texts(&docs).unwrap();
        store.create_collection_for("empty", &pipeline).unwrap();
        (store, model)
    }

    fn config() -> AdaptConfig {
        AdaptConfig { queries: 6, documents: 12, min_words: 5, seed: 3 }
    }

    #[test]
    fn sentences_come_from_the_collection_and_queried_documents_are_held_out() {
        let tmp = tempfile::tempdir().unwrap();
        let (store, model) = store_with_docs(tmp.path(), 20);
        let texts = read_collection(&store.collection("docs").unwrap()).unwrap();
        assert_eq!(texts.documents.len(), 20);
        assert_eq!(texts.pooling, Pooling::Mean);
        assert_eq!(texts.model_dir.canonicalize().unwrap(), model.canonicalize().unwrap());
        assert_eq!(texts.documents[3].text, text(3), "the stored text, whole");

        let a = adaptation_data(&texts.documents, &config()).unwrap();
        let held: HashSet<&str> = a.pseudo.data.qrels.values().flat_map(|r| r.keys().map(String::as_str)).collect();
        assert_eq!((a.held_out, held.len(), a.pseudo.data.queries.len()), (6, 6, 6));
        let trained: HashSet<&str> = a.sentences.iter().map(String::as_str).collect();
        assert_eq!(trained.len(), a.sentences.len(), "each sentence once");
        for i in 0..20 {
            let id = format!("d{i:02}");
            for j in 0..4 {
                let s = sentence(i, j);
                // Every sentence of a document that serves no query, and none of a queried one.
                assert_eq!(trained.contains(s.as_str()), !held.contains(id.as_str()), "{id}: {s}");
            }
        }
        assert_eq!(a.sentences.len(), 14 * 4);
        assert_eq!((a.fragments, a.duplicates), (14, 0), "one two-word fragment per trained document");
        // A query's text is never trained on.
        for q in &a.pseudo.data.queries {
            assert!(!trained.contains(q.text.as_str()), "{q:?}");
        }
        let again = adaptation_data(&texts.documents, &config()).unwrap();
        assert_eq!((again.sentences, again.pseudo.data.queries), (a.sentences, a.pseudo.data.queries));
    }

    fn trainer(model: &Path, max_steps: usize, eval_every: usize, patience: Option<usize>) -> Trainer {
        let config = SimcseConfig {
            pooling: Pooling::Mean,
            batch_size: 4,
            max_length: 16,
            max_steps: Some(max_steps),
            eval_every,
            patience,
            optimizer: crate::train::optimizer::AdamWConfig { lr: 1e-3, ..Default::default() },
            ..SimcseConfig::unsupervised()
        };
        Trainer::new(model, &ModelInit::Pretrained, config, &Device::Cpu).unwrap()
    }

    /// The pseudo-query nDCG@10 that `validate` reports equals one computed independently: the
    /// trainer's weights loaded as an encoder, every query ranked against every sampled document.
    #[test]
    fn pseudo_queries_are_scored_over_the_queried_documents_and_a_sample() {
        let tmp = tempfile::tempdir().unwrap();
        let (store, model) = store_with_docs(tmp.path(), 20);
        let texts = read_collection(&store.collection("docs").unwrap()).unwrap();
        let a = adaptation_data(&texts.documents, &config()).unwrap();
        let t = trainer(&model, 1, 0, None);
        let dev = PseudoDev::new(&t, &a.pseudo, 12, 32, 3).unwrap();
        assert_eq!((dev.queries(), dev.documents()), (6, 12));
        for r in a.pseudo.data.qrels.values().flat_map(|r| r.keys()) {
            assert!(dev.document_ids().contains(r), "queried document {r} is searched");
        }
        let Validated::PseudoQueries(got) = dev.validate(&t).unwrap() else { panic!("pseudo scores expected") };

        let encoder = Encoder::load(&model, EncoderOptions { max_length: Some(32), ..Default::default() }).unwrap();
        let by_id: HashMap<&str, &BeirDoc> = a.pseudo.data.corpus.iter().map(|d| (d.id.as_str(), d)).collect();
        let doc_texts: Vec<String> = dev.document_ids().iter().map(|id| doc_text(by_id[id.as_str()])).collect();
        let doc_refs: Vec<&str> = doc_texts.iter().map(String::as_str).collect();
        let docs = &encoder.encode(&doc_refs, &[Pooling::Mean]).unwrap().vectors[0];
        let mut ndcg = 0.0;
        for q in &a.pseudo.data.queries {
            let qv = &encoder.encode(&[q.text.as_str()], &[Pooling::Mean]).unwrap().vectors[0][0];
            let relevant = a.pseudo.data.qrels[&q.id].keys().next().unwrap();
            let target = dev.document_ids().iter().position(|id| id == relevant).unwrap();
            let own = crate::vector::cosine(qv, &docs[target]);
            let rank = docs.iter().filter(|d| crate::vector::cosine(qv, d) > own).count();
            if rank < 10 {
                ndcg += 1.0 / ((rank + 2) as f64).log2();
            }
        }
        ndcg /= a.pseudo.data.queries.len() as f64;
        assert!((got.ndcg10 - ndcg).abs() < 1e-9, "validate {} against {ndcg}", got.ndcg10);
        assert!(got.ndcg10 > 0.0 && got.recall10 >= got.ndcg10);
    }

    /// The trainer's variables at each evaluated step.
    type Seen = Vec<(usize, Vec<(String, Tensor)>)>;

    /// Scores evaluations by step from a script, and keeps each evaluated step's weights.
    struct Scripted {
        scores: Vec<(usize, f64)>,
        seen: RefCell<Seen>,
    }

    impl Validation for Scripted {
        fn describe(&self) -> String {
            "scripted".into()
        }

        fn validate(&self, trainer: &Trainer) -> Result<Validated> {
            self.seen.borrow_mut().push((trainer.step(), trainer.variables()?));
            let (_, ndcg10) = self.scores.iter().find(|(s, _)| *s == trainer.step()).copied().unwrap_or((0, 0.0));
            Ok(Validated::PseudoQueries(PseudoScores { ndcg10, recall10: ndcg10 }))
        }
    }

    fn values(t: &Tensor) -> Vec<f32> {
        t.flatten_all().unwrap().to_vec1().unwrap()
    }

    /// Fits with scripted scores; returns the report, the output folder and the weights seen at
    /// each evaluation.
    fn fit_scripted(scores: &[(usize, f64)], patience: usize) -> (crate::train::FitReport, tempfile::TempDir, Seen) {
        let tmp = tempfile::tempdir().unwrap();
        let model = tmp.path().join("tiny");
        write_tiny_model(&model);
        let mut t = trainer(&model, 10, 2, Some(patience));
        let sentences: Vec<String> = (0..8).map(|i| sentence(i, 0)).collect();
        let data: TrainingData = t.tokenize_sentences(&sentences).unwrap();
        let script = Scripted { scores: scores.to_vec(), seen: RefCell::new(Vec::new()) };
        let out = tmp.path().join("run");
        let report = t.fit_with(&data, Some(&script), &out, serde_json::json!({}), &crate::progress::Silent).unwrap();
        (report, tmp, script.seen.into_inner())
    }

    #[test]
    fn early_stopping_keeps_the_best_scoring_step_and_stops_after_patience() {
        // Best at step 2; steps 4 and 6 do not beat it, so with patience 2 training stops at 6
        // (the 0.9 at step 8 is never reached).
        let (report, tmp, seen) = fit_scripted(&[(0, 0.3), (2, 0.5), (4, 0.4), (6, 0.45), (8, 0.9)], 2);
        let out = tmp.path().join("run");
        assert!(report.stopped_early);
        assert_eq!(report.steps, 6);
        let steps: Vec<usize> = report.evaluations.iter().map(|e: &Evaluation| e.step).collect();
        assert_eq!(steps, vec![0, 2, 4, 6], "the last evaluation is not repeated after stopping");
        assert_eq!(seen.len(), 4);
        let best = report.best_evaluation.unwrap();
        assert_eq!((best.step, best.scores.score()), (2, 0.5));
        assert!(report.best.is_none() && report.before.is_none(), "no STS-B dev scores");
        let info = read_info(&out.join("best"));
        assert_eq!(info.step, 2);
        assert_eq!(info.pooling, "mean");
        assert_eq!(info.args["validation"]["pseudo_queries"]["ndcg10"], 0.5);
        assert_eq!(read_info(&out.join("last")).step, 6);
        // The best checkpoint holds the weights of step 2, not those of step 6.
        let saved = candle_core::safetensors::load(out.join("best/model.safetensors"), &Device::Cpu).unwrap();
        let at = |step: usize| &seen.iter().find(|(s, _)| *s == step).unwrap().1;
        for (name, w) in at(2) {
            assert_eq!(values(&saved[name]), values(w), "{name}");
        }
        assert!(at(6).iter().any(|(name, w)| values(&saved[name]) != values(w)), "training changed the weights");
        let log = std::fs::read_to_string(out.join("log.jsonl")).unwrap();
        assert_eq!(log.lines().filter(|l| l.contains("pseudo_ndcg10")).count(), 4);
        assert_eq!(log.lines().filter(|l| l.contains("\"loss\"")).count(), 6);
    }

    #[test]
    fn when_no_step_beats_the_start_the_best_checkpoint_is_the_starting_model() {
        let (report, tmp, seen) = fit_scripted(&[(0, 0.6), (2, 0.6), (4, 0.5)], 2);
        assert!(report.stopped_early);
        assert_eq!(report.best_evaluation.unwrap().step, 0, "a tie does not replace the best");
        assert_eq!(read_info(&tmp.path().join("run/best")).step, 0);
        let saved =
            candle_core::safetensors::load(tmp.path().join("run/best/model.safetensors"), &Device::Cpu).unwrap();
        for (name, w) in &seen[0].1 {
            assert_eq!(values(&saved[name]), values(w), "{name}");
        }
    }

    fn read_info(dir: &Path) -> crate::train::checkpoint::TrainingInfo {
        crate::train::checkpoint::read_training_info(dir).unwrap().unwrap()
    }

    #[test]
    fn missing_or_textless_collections_are_clear_errors() {
        let tmp = tempfile::tempdir().unwrap();
        drop(store_with_docs(tmp.path(), 3));
        let e = open_collection(&tmp.path().join("store"), "nope").unwrap_err().to_string();
        assert!(e.contains("no collection \"nope\""), "{e}");
        let e = open_collection(&tmp.path().join("no-store"), "docs").unwrap_err();
        assert!(matches!(e, Error::NoStore { .. }), "{e}");
        assert_eq!(open_collection(&tmp.path().join("store"), "docs").unwrap().documents.len(), 3);
        let store = Store::open_existing(tmp.path().join("store")).unwrap();
        let e = read_collection(&store.collection("empty").unwrap()).unwrap_err().to_string();
        assert!(e.contains("no texts"), "{e}");
        // Vectors made elsewhere, without text: nothing to train on, and no model to train.
        let ext = store.create_external_collection("ext", "other-model", 3).unwrap();
        ext.upsert(&[Doc {
            id: "v".into(),
            text: String::new(),
            metadata: serde_json::Value::Null,
            vector: vec![1.0, 0.0, 0.0],
        }])
        .unwrap();
        let e = read_collection(&ext).unwrap_err().to_string();
        assert!(e.contains("\"ext\"") && e.contains("outside isovec"), "{e}");
        // Documents too few to hold any out and still train on two sentences.
        let texts = read_collection(&store.collection("docs").unwrap()).unwrap();
        let e = adaptation_data(&texts.documents, &AdaptConfig { queries: 3, ..config() }).unwrap_err().to_string();
        assert!(e.contains("too few to train on"), "{e}");
    }
}

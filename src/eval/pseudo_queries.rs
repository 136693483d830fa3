//! Pseudo-queries made from a corpus alone, for comparing retrieval pipelines without relevance
//! labels: no model generates text, each query is cut out of one document, and that document
//! (without the cut-out part) is its one relevant document.
//!
//! Three schemes, chosen per document in a seeded order:
//! - **inverse cloze** (Lee et al., 2019): a sentence of a document of three or more sentences is
//!   the query; the document loses that sentence;
//! - **title**: a document's title (three words or more) is the query for its body; the document
//!   loses its title;
//! - **span**: a random run of words (as Contriever crops) is the query; the document loses it.
//!
//! Invariant, enforced by [`build`] and tested: a query's text never remains in the corpus text
//! of its relevant document (no leakage), each document serves at most one query, documents
//! that serve none are unchanged, and the same corpus, configuration and seed give the same set.

use std::collections::HashMap;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use super::retrieval::{BeirData, BeirDoc, BeirQuery};
use crate::{Error, Result};

/// How a pseudo-query is cut out of its document.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// A sentence of the document.
    InverseCloze,
    /// The document's title.
    Title,
    /// A random run of words.
    Span,
}

impl Scheme {
    /// The scheme's name in query ids and tables.
    pub fn name(self) -> &'static str {
        match self {
            Scheme::InverseCloze => "ict",
            Scheme::Title => "title",
            Scheme::Span => "span",
        }
    }
}

/// What [`build`] makes.
#[derive(Clone, Debug)]
pub struct PseudoConfig {
    /// Number of queries wanted (fewer if the corpus has too few usable documents).
    pub queries: usize,
    /// The schemes, tried in this order for each document drawn, the first that applies used.
    pub schemes: Vec<Scheme>,
    /// Seed of the draws.
    pub seed: u64,
    /// Words in a span query: at least, at most.
    pub span_words: (usize, usize),
    /// Words a sentence needs to be an inverse-cloze query.
    pub min_sentence_words: usize,
}

impl Default for PseudoConfig {
    fn default() -> Self {
        PseudoConfig {
            queries: 300,
            schemes: vec![Scheme::InverseCloze, Scheme::Title, Scheme::Span],
            seed: 42,
            span_words: (8, 16),
            min_sentence_words: 5,
        }
    }
}

/// A pseudo-query set: the corpus as it must be indexed (queried documents without their
/// query's text), the queries, their one relevant document each, and each query's scheme.
#[derive(Clone, Debug)]
pub struct PseudoSet {
    /// The corpus to index, the pseudo-queries and their one relevant document each.
    pub data: BeirData,
    /// The scheme that made each query, by query id.
    pub scheme: HashMap<String, Scheme>,
}

/// Builds a pseudo-query set from `corpus` (see the module's invariants).
pub fn build(corpus: &[BeirDoc], config: &PseudoConfig) -> Result<PseudoSet> {
    let (lo, hi) = config.span_words;
    if config.queries == 0 || config.schemes.is_empty() || lo == 0 || lo > hi {
        return Err(Error::InvalidInput(format!(
            "pseudo-queries: give at least one query and one scheme, and span words 1 <= min <= max (got {config:?})"
        )));
    }
    let mut rng = StdRng::seed_from_u64(config.seed);
    let mut order: Vec<usize> = (0..corpus.len()).collect();
    order.shuffle(&mut rng);
    let mut docs = corpus.to_vec();
    let mut queries = Vec::new();
    let mut qrels = HashMap::new();
    let mut scheme_of = HashMap::new();
    for i in order {
        if queries.len() == config.queries {
            break;
        }
        let doc = &corpus[i];
        let cut = config.schemes.iter().find_map(|&s| cut(doc, s, config, &mut rng).map(|c| (s, c)));
        let Some((scheme, (query, rest))) = cut else { continue };
        let id = format!("{}-{}", scheme.name(), doc.id);
        docs[i] = rest;
        queries.push(BeirQuery { id: id.clone(), text: query });
        qrels.insert(id.clone(), HashMap::from([(doc.id.clone(), 1)]));
        scheme_of.insert(id, scheme);
    }
    if queries.is_empty() {
        return Err(Error::InvalidInput(
            "pseudo-queries: no document is long enough to cut a query out of (sentences, titles or spans)".into(),
        ));
    }
    Ok(PseudoSet { data: BeirData { corpus: docs, queries, qrels }, scheme: scheme_of })
}

/// The query `scheme` cuts out of `doc`, and the document without it; `None` if it does not apply.
fn cut(doc: &BeirDoc, scheme: Scheme, config: &PseudoConfig, rng: &mut StdRng) -> Option<(String, BeirDoc)> {
    match scheme {
        Scheme::InverseCloze => {
            let sentences = sentences(&doc.text);
            let usable: Vec<usize> =
                (0..sentences.len()).filter(|&j| words(sentences[j]).count() >= config.min_sentence_words).collect();
            if sentences.len() < 3 || usable.is_empty() {
                return None;
            }
            let j = usable[rng.random_range(0..usable.len())];
            let query = sentences[j].trim().to_string();
            let rest = sentences.iter().enumerate().filter(|&(k, _)| k != j).map(|(_, s)| s.trim()).collect::<Vec<_>>();
            held_out(doc, query, doc.title.clone(), rest.join(" "))
        }
        Scheme::Title => {
            if words(&doc.title).count() < 3 || words(&doc.text).count() < 3 {
                return None;
            }
            held_out(doc, doc.title.trim().to_string(), String::new(), doc.text.clone())
        }
        Scheme::Span => {
            let all: Vec<&str> = words(&doc.text).collect();
            let (lo, hi) = config.span_words;
            // The document keeps at least as many words as the query takes.
            if all.len() < 2 * lo {
                return None;
            }
            let n = rng.random_range(lo..=hi.min(all.len() / 2));
            let start = rng.random_range(0..=all.len() - n);
            let query = all[start..start + n].join(" ");
            let rest = [&all[..start], &all[start + n..]].concat().join(" ");
            held_out(doc, query, doc.title.clone(), rest)
        }
    }
}

/// `doc` with `title` and `text`, if the query's text is no longer in it (a sentence repeated
/// elsewhere in the document would leak).
fn held_out(doc: &BeirDoc, query: String, title: String, text: String) -> Option<(String, BeirDoc)> {
    let rest = BeirDoc { id: doc.id.clone(), title, text };
    let leaks = rest.text.contains(&query) || rest.title.contains(&query);
    (!leaks && !query.is_empty()).then_some((query, rest))
}

fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split_whitespace()
}

/// The sentences of `text`: cut after `.`, `!` or `?` followed by white space and an upper-case
/// letter or a digit (so "e.g. the" and "3.5 mm" stay whole).
pub fn sentences(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    for w in 0..chars.len() {
        let (at, c) = chars[w];
        if !matches!(c, '.' | '!' | '?') {
            continue;
        }
        let Some(&(_, space)) = chars.get(w + 1) else { continue };
        let next = chars[w + 1..].iter().find(|(_, ch)| !ch.is_whitespace());
        if space.is_whitespace() && next.is_some_and(|(_, ch)| ch.is_uppercase() || ch.is_ascii_digit()) {
            let end = at + c.len_utf8();
            out.push(&text[start..end]);
            start = end;
        }
    }
    if start < text.len() && !text[start..].trim().is_empty() {
        out.push(&text[start..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(id: &str, title: &str, text: &str) -> BeirDoc {
        BeirDoc { id: id.into(), title: title.into(), text: text.into() }
    }

    fn corpus() -> Vec<BeirDoc> {
        vec![
            doc(
                "a",
                "Photosynthesis in green plants",
                "Plants convert sunlight into chemical energy. The process happens in chloroplasts of leaf cells. \
                 Oxygen is released as a by-product, e.g. into the air. Glucose stores the energy for later use.",
            ),
            doc(
                "b",
                "Volcanoes",
                "A volcano erupts when magma rises through the crust and escapes as lava at the surface.",
            ),
            doc("c", "", "Short text."),
            doc(
                "d",
                "How honey bees make honey",
                "Bees collect nectar from flowers across the meadow. They store it in wax combs inside the hive. \
                 Fanning wings evaporate the water until it thickens. The colony eats it through the winter.",
            ),
            doc(
                "e",
                "The Moon and the tides",
                "The Moon orbits the Earth about once a month and its gravity pulls the oceans.",
            ),
        ]
    }

    #[test]
    fn sentences_split_at_ends_not_at_abbreviations_or_decimals() {
        let s = sentences("A 3.5 mm plug, e.g. the usual one. It fits! Does it? 4 of them do.");
        assert_eq!(s, vec!["A 3.5 mm plug, e.g. the usual one.", " It fits!", " Does it?", " 4 of them do."]);
    }

    #[test]
    fn queries_are_cut_out_of_their_documents_without_leaking() {
        let corpus = corpus();
        let set = build(&corpus, &PseudoConfig { queries: 10, ..Default::default() }).unwrap();
        // c is too short for any scheme; the others serve one query each.
        assert_eq!(set.data.queries.len(), 4);
        for q in &set.data.queries {
            let relevant: Vec<&String> = set.data.qrels[&q.id].keys().collect();
            assert_eq!(relevant.len(), 1);
            let d = set.data.corpus.iter().find(|d| &d.id == relevant[0]).unwrap();
            let original = corpus.iter().find(|o| o.id == d.id).unwrap();
            assert!(!d.text.contains(&q.text) && !d.title.contains(&q.text), "{q:?} leaks into {d:?}");
            // What was cut out is the original document's.
            assert!(original.text.contains(&q.text) || original.title.contains(&q.text), "{q:?}");
            assert!(words(&d.text).count() >= 3, "{d:?} lost too much");
            match set.scheme[&q.id] {
                Scheme::InverseCloze => {
                    assert_eq!(sentences(&d.text).len(), sentences(&original.text).len() - 1);
                    assert_eq!(d.title, original.title);
                }
                Scheme::Title => assert!(d.title.is_empty() && d.text == original.text),
                Scheme::Span => {
                    assert_eq!(words(&d.text).count() + words(&q.text).count(), words(&original.text).count())
                }
            }
        }
        // Multi-sentence documents give inverse-cloze queries (the first scheme that applies).
        assert_eq!(set.scheme["ict-a"], Scheme::InverseCloze);
        assert_eq!(set.scheme["ict-d"], Scheme::InverseCloze);
        // b and e are one sentence: a title of three words or more, else a span.
        assert_eq!(set.scheme["title-e"], Scheme::Title);
        assert_eq!(set.scheme["span-b"], Scheme::Span);
        // Documents that served no query are unchanged.
        assert_eq!(set.data.corpus[2], corpus[2]);
    }

    #[test]
    fn a_seed_gives_one_set_and_another_seed_another() {
        let corpus: Vec<BeirDoc> = (0..40)
            .map(|i| {
                let text = (0..5)
                    .map(|s| format!("Sentence {s} of document {i} says something long enough."))
                    .collect::<Vec<_>>();
                doc(&format!("d{i}"), "", &text.join(" "))
            })
            .collect();
        let config = PseudoConfig { queries: 15, ..Default::default() };
        let a = build(&corpus, &config).unwrap();
        let b = build(&corpus, &config).unwrap();
        assert_eq!(a.data.queries, b.data.queries);
        assert_eq!(a.data.corpus, b.data.corpus);
        assert_eq!(a.data.queries.len(), 15);
        let c = build(&corpus, &PseudoConfig { seed: 7, ..config }).unwrap();
        assert_ne!(a.data.queries, c.data.queries);
    }

    #[test]
    fn bad_configurations_and_corpora_are_errors() {
        assert!(build(&corpus(), &PseudoConfig { queries: 0, ..Default::default() }).is_err());
        assert!(build(&corpus(), &PseudoConfig { span_words: (9, 3), ..Default::default() }).is_err());
        let e = build(&[doc("x", "", "Too short.")], &PseudoConfig::default()).unwrap_err().to_string();
        assert!(e.contains("long enough"), "{e}");
    }
}

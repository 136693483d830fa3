//! Texts made into vectors for a store: each whole, or as overlapping passages cut where
//! every token is encoded, through an embedder in calls of a bounded number of texts.
//!
//! A passage is a run of at most `length` tokens; passage `i` starts at token `i × stride`, so
//! neighbours share `length − stride` tokens and a sentence cut by one passage's end is whole in
//! the next. A text that fits in one passage is kept whole. Invariants of [`embed_texts`]: every
//! text gets at least one vector, in input order; only texts encoded whole count as truncated
//! (passages are cut to fit); an embedder that returns a different number of vectors than texts
//! is an error, not a misaligned result. The store (`Collection::add_texts`)
//! checks the documents and writes what comes back; this module knows nothing of the store.

use crate::{Embedder, Error, Result, TokenSpans};

/// Texts encoded per call to the embedder in [`embed_texts`].
const EMBED_CHUNK: usize = 1024;

/// How `Collection::add_texts_in_passages` (in `store`) splits long texts; `None` fields take
/// the encoder's limit (tokens one input holds) and a quarter of overlap.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Passages {
    /// Tokens per passage (special tokens not counted); at most the encoder's limit.
    pub length: Option<usize>,
    /// Tokens from one passage's start to the next's (1..=length).
    pub stride: Option<usize>,
}

impl Passages {
    /// Passages of `length` tokens, `stride` apart (`None`: three quarters of the length).
    pub fn new(length: usize, stride: Option<usize>) -> Self {
        Passages { length: Some(length), stride }
    }

    /// The length and stride for an encoder that holds `capacity` tokens, checked.
    pub fn resolve(&self, capacity: usize) -> Result<(usize, usize)> {
        let length = self.length.unwrap_or(capacity);
        if length == 0 || length > capacity {
            return Err(Error::InvalidInput(format!(
                "passage length {length} is out of range: the encoder holds {capacity} tokens per input; use 1..={capacity}"
            )));
        }
        let stride = self.stride.unwrap_or(length - length / 4).max(1);
        if stride > length {
            return Err(Error::InvalidInput(format!(
                "passage stride {stride} is longer than the passage ({length} tokens) and would skip text; use 1..={length}"
            )));
        }
        Ok((length, stride))
    }
}

/// The passages of `text` whose tokens are `tokens`: byte ranges in `text`, in order.
pub fn split(text: &str, tokens: &TokenSpans, length: usize, stride: usize) -> Vec<std::ops::Range<usize>> {
    let spans = &tokens.spans;
    if spans.len() <= length || length == 0 || stride == 0 {
        return std::iter::once(0..text.len()).collect();
    }
    let mut out = Vec::new();
    let mut start = 0;
    loop {
        let end = (start + length).min(spans.len());
        out.push(spans[start].start..spans[end - 1].end);
        if end == spans.len() {
            return out;
        }
        start += stride;
    }
}

/// Texts encoded by [`embed_texts`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EmbeddedTexts {
    /// Per text, in input order: its vector, or one per passage.
    pub vectors: Vec<Vec<Vec<f32>>>,
    /// Texts encoded whole whose tail the encoder did not read (passages never count).
    pub truncated: usize,
}

/// Encodes `texts` with `embedder`: each whole, or with `split` as passages (which needs an
/// embedder that shows its tokens, [`Embedder::token_spans`]). Only splitting needs every
/// token of a text; a text encoded whole is tokenized as far as the encoder reads it.
pub fn embed_texts(embedder: &dyn Embedder, texts: &[&str], split: Option<Passages>) -> Result<EmbeddedTexts> {
    // Each text's pieces: the whole text, or its passages.
    let mut pieces: Vec<Vec<&str>> = Vec::with_capacity(texts.len());
    for &text in texts {
        match split {
            Some(p) => {
                let Some(tokens) = embedder.token_spans(text)? else {
                    return Err(Error::InvalidInput(format!(
                        "the embedder of {} does not show its tokens, so texts cannot be split into passages; index them whole",
                        embedder.id()
                    )));
                };
                let (length, stride) = p.resolve(tokens.capacity)?;
                let ranges = self::split(text, &tokens, length, stride);
                pieces.push(ranges.into_iter().map(|r| &text[r]).collect());
            }
            None => pieces.push(vec![text]),
        }
    }
    let flat: Vec<&str> = pieces.iter().flatten().copied().collect();
    let mut vectors = Vec::with_capacity(flat.len());
    // Passages are cut to fit, so only texts encoded whole count as truncated.
    let mut truncated = 0;
    for chunk in flat.chunks(EMBED_CHUNK) {
        let embedded = embedder.embed_counting_cuts(chunk)?;
        if split.is_none() {
            truncated += embedded.truncated;
        }
        let got = embedded.vectors;
        if got.len() != chunk.len() {
            return Err(Error::Model(format!("the embedder returned {} vectors for {} texts", got.len(), chunk.len())));
        }
        vectors.extend(got);
    }
    let mut vectors = vectors.into_iter();
    let vectors = pieces.iter().map(|p| vectors.by_ref().take(p.len()).collect()).collect();
    Ok(EmbeddedTexts { vectors, truncated })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whitespace-separated words as tokens.
    fn words(text: &str, capacity: usize) -> TokenSpans {
        let mut spans = Vec::new();
        let mut start = None;
        for (i, c) in text.char_indices().chain([(text.len(), ' ')]) {
            match (c.is_whitespace(), start) {
                (false, None) => start = Some(i),
                (true, Some(s)) => {
                    spans.push(s..i);
                    start = None;
                }
                _ => {}
            }
        }
        TokenSpans { spans, capacity }
    }

    #[test]
    fn passages_cover_every_token_with_the_overlap_asked() {
        let text: String = (0..23).map(|i| format!("w{i} ")).collect();
        let tokens = words(&text, 10);
        let cuts = split(&text, &tokens, 10, 7);
        let pieces: Vec<Vec<&str>> = cuts.iter().map(|r| text[r.clone()].split(' ').collect()).collect();
        assert_eq!(pieces.len(), 3, "{pieces:?}");
        assert_eq!(pieces[0].first(), Some(&"w0"));
        assert_eq!(pieces[0].len(), 10);
        assert_eq!(pieces[1].first(), Some(&"w7"), "stride 7");
        assert_eq!(pieces[1].last(), Some(&"w16"));
        assert_eq!((pieces[2].first(), pieces[2].last(), pieces[2].len()), (Some(&"w14"), Some(&"w22"), 9));
        // Every word is in some passage.
        for i in 0..23 {
            let w = format!("w{i}");
            assert!(pieces.iter().any(|p| p.contains(&w.as_str())), "{w} lost");
        }
    }

    #[test]
    fn a_text_that_fits_is_kept_whole() {
        let text = "  short text, kept  ";
        assert_eq!(split(text, &words(text, 8), 8, 6), vec![0..text.len()]);
    }

    #[test]
    fn defaults_and_bad_values() {
        assert_eq!(Passages::default().resolve(254).unwrap(), (254, 191));
        assert_eq!(Passages::new(128, None).resolve(254).unwrap(), (128, 96));
        assert_eq!(Passages::new(128, Some(128)).resolve(254).unwrap(), (128, 128));
        let err = Passages::new(300, None).resolve(254).unwrap_err().to_string();
        assert!(err.contains("1..=254"), "{err}");
        assert!(Passages::new(0, None).resolve(254).is_err());
        let err = Passages::new(100, Some(101)).resolve(254).unwrap_err().to_string();
        assert!(err.contains("skip"), "{err}");
    }
}

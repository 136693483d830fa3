//! Tokenization: a model's `tokenizer.json`, or the standard BERT WordPiece pipeline from `vocab.txt`.

use tokenizers::models::wordpiece::WordPiece;
use tokenizers::normalizers::BertNormalizer;
use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
use tokenizers::processors::bert::BertProcessing;
use tokenizers::{Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

use super::model_dir::ModelDir;
use crate::{Error, Result};

/// One tokenized text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tokens {
    /// Token ids, special tokens included.
    pub ids: Vec<u32>,
    /// Whether the text was cut at the maximum length.
    pub truncated: bool,
}

/// A tokenizer that truncates at a maximum length and never pads (padding is per batch).
#[derive(Clone)]
pub struct TextTokenizer {
    inner: Tokenizer,
    /// The same tokenizer without the length limit, to see a whole text's tokens.
    whole: Tokenizer,
    max_length: usize,
    /// Number of tokens an empty text produces (the special tokens).
    special_count: usize,
}

impl TextTokenizer {
    /// Loads `tokenizer.json`, or builds BERT's WordPiece pipeline from `vocab.txt`.
    pub fn load(dir: &ModelDir, max_length: usize) -> Result<Self> {
        let mut inner = match (&dir.tokenizer_json, &dir.vocab_txt) {
            (Some(json), _) => Tokenizer::from_file(json).map_err(|e| {
                Error::Model(format!("{}: cannot read the tokenizer: {e}", json.display()))
            })?,
            (None, Some(vocab)) => bert_wordpiece(vocab, dir.lowercase())?,
            (None, None) => {
                return Err(Error::Model(format!(
                    "{}: neither tokenizer.json nor vocab.txt is there",
                    dir.path.display()
                )))
            }
        };
        Self::from_tokenizer(&mut inner, max_length)?;
        Self::new(inner, max_length)
    }

    fn from_tokenizer(inner: &mut Tokenizer, max_length: usize) -> Result<()> {
        // The default model's tokenizer.json pads every input to 128 tokens: padding is done per batch.
        inner.with_padding(None);
        inner
            .with_truncation(Some(TruncationParams {
                direction: TruncationDirection::Right,
                max_length,
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
            }))
            .map_err(|e| Error::InvalidInput(format!("truncation at {max_length}: {e}")))?;
        Ok(())
    }

    fn new(inner: Tokenizer, max_length: usize) -> Result<Self> {
        let empty = inner
            .encode("", true)
            .map_err(|e| Error::Model(format!("tokenizer cannot encode: {e}")))?;
        let mut whole = inner.clone();
        whole
            .with_truncation(None)
            .map_err(|e| Error::Model(format!("tokenizer without a length limit: {e}")))?;
        Ok(TextTokenizer {
            special_count: empty.get_ids().len(),
            inner,
            whole,
            max_length,
        })
    }

    /// The maximum number of tokens, special tokens included.
    pub fn max_length(&self) -> usize {
        self.max_length
    }

    /// Every token of `text` (special tokens left out, none cut) as its byte range in `text`,
    /// and how many of them one input holds.
    pub fn token_spans(&self, text: &str) -> Result<crate::pipeline::TokenSpans> {
        let enc = self
            .whole
            .encode(text, false)
            .map_err(|e| Error::InvalidInput(format!("cannot tokenize: {e}")))?;
        Ok(crate::pipeline::TokenSpans {
            spans: enc.get_offsets().iter().map(|&(a, b)| a..b).collect(),
            capacity: self.max_length.saturating_sub(self.special_count),
        })
    }

    /// The id of a token in the vocabulary.
    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// The vocabulary size, special tokens included.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// Tokenizes texts (in parallel); an empty or whitespace-only text is an error naming its index.
    pub fn tokenize(&self, texts: &[&str]) -> Result<Vec<Tokens>> {
        // One text (a query) is tokenized on this thread: no copy of the list, no thread hand-off.
        let encodings = match texts {
            [one] => self.inner.encode(*one, true).map(|e| vec![e]),
            _ => self.inner.encode_batch(texts.to_vec(), true),
        }
        .map_err(|e| Error::InvalidInput(format!("cannot tokenize: {e}")))?;
        encodings
            .into_iter()
            .enumerate()
            .map(|(i, enc)| {
                if enc.get_ids().len() <= self.special_count {
                    return Err(Error::InvalidInput(format!(
                        "text #{i} is empty (or only spaces or control characters): \
                         nothing to encode; remove it or give it some text"
                    )));
                }
                Ok(Tokens {
                    truncated: !enc.get_overflowing().is_empty(),
                    ids: enc.get_ids().to_vec(),
                })
            })
            .collect()
    }
}

/// The standard BERT tokenizer: BERT normaliser, BERT pre-tokenizer, WordPiece, [CLS] … [SEP].
fn bert_wordpiece(vocab: &std::path::Path, lowercase: bool) -> Result<Tokenizer> {
    let vocab_str = vocab.to_string_lossy().into_owned();
    let wordpiece = WordPiece::from_file(&vocab_str)
        .unk_token("[UNK]".into())
        .build()
        .map_err(|e| Error::Model(format!("{}: not a WordPiece vocabulary: {e}", vocab.display())))?;
    let special = |t: &str| {
        wordpiece_id(&wordpiece, t).ok_or_else(|| {
            Error::Model(format!("{}: the vocabulary has no {t} token", vocab.display()))
        })
    };
    let (cls, sep) = (special("[CLS]")?, special("[SEP]")?);
    let mut tokenizer = Tokenizer::new(wordpiece);
    tokenizer
        .with_normalizer(Some(BertNormalizer::new(true, true, None, lowercase)))
        .map_err(|e| Error::Model(format!("{}: {e}", vocab.display())))?
        .with_pre_tokenizer(Some(BertPreTokenizer))
        .with_post_processor(Some(BertProcessing::new(
            ("[SEP]".into(), sep),
            ("[CLS]".into(), cls),
        )));
    Ok(tokenizer)
}

fn wordpiece_id(wp: &WordPiece, token: &str) -> Option<u32> {
    use tokenizers::Model;
    wp.token_to_id(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The installed default model's folder; a folder that is there but does not open fails.
    fn default_dir() -> Option<ModelDir> {
        crate::test_support::default_model().map(|path| ModelDir::open(&path).unwrap())
    }

    #[test]
    fn vocab_txt_pipeline_matches_tokenizer_json() {
        let Some(dir) = default_dir() else { return };
        let from_json = TextTokenizer::load(&dir, 512).unwrap();
        let mut vocab_only = dir.clone();
        vocab_only.tokenizer_json = None;
        let from_vocab = TextTokenizer::load(&vocab_only, 512).unwrap();
        let texts = [
            "A man is playing a GUITAR.",
            "Café déjà-vu: naïve façade, 3.14159 — «quoted»!",
            "unbelievably tokenizable words like electroencephalography",
        ];
        assert_eq!(from_json.tokenize(&texts).unwrap(), from_vocab.tokenize(&texts).unwrap());
    }

    #[test]
    fn no_fixed_padding_and_truncation_is_reported() {
        let Some(dir) = default_dir() else { return };
        let tok = TextTokenizer::load(&dir, 8).unwrap();
        let out = tok.tokenize(&["hello", "one two three four five six seven eight nine"]).unwrap();
        assert_eq!(out[0].ids.len(), 3, "[CLS] hello [SEP], no padding");
        assert!(!out[0].truncated);
        assert_eq!(out[1].ids.len(), 8);
        assert!(out[1].truncated);
        assert_eq!(out[1].ids[7], tok.token_id("[SEP]").unwrap());
    }

    #[test]
    fn token_spans_cover_the_whole_text_and_agree_with_truncation() {
        let Some(dir) = default_dir() else {
            eprintln!("skipped: default model not installed (isovec model fetch)");
            return;
        };
        let tok = TextTokenizer::load(&dir, 8).unwrap();
        let text = "Café owners tokenize unbelievably long sentences, word after word.";
        let spans = tok.token_spans(text).unwrap();
        assert_eq!(spans.capacity, 6, "8 minus [CLS] and [SEP]");
        let cut = tok.tokenize(&[text]).unwrap().remove(0);
        assert!(cut.truncated && spans.spans.len() > spans.capacity);
        // The pieces, lower-cased and accent-free, are the tokens the vocabulary holds.
        let whole = TextTokenizer::load(&dir, 512).unwrap().tokenize(&[text]).unwrap().remove(0);
        assert_eq!(whole.ids.len(), spans.spans.len() + 2);
        assert_eq!(&text[spans.spans[0].clone()], "Café");
        assert_eq!(&text[spans.spans.last().unwrap().clone()], ".");
        for w in spans.spans.windows(2) {
            assert!(w[0].end <= w[1].start, "spans in order, not overlapping: {w:?}");
        }
        let short = tok.token_spans("hello").unwrap();
        assert_eq!(short.spans, vec![0..5]);
    }

    #[test]
    fn empty_and_blank_texts_are_errors() {
        let Some(dir) = default_dir() else { return };
        let tok = TextTokenizer::load(&dir, 16).unwrap();
        for bad in ["", "   ", "\u{1}\u{2}\t\n"] {
            let err = tok.tokenize(&["fine", bad]).unwrap_err().to_string();
            assert!(err.contains("text #1 is empty"), "{err}");
        }
    }
}

//! Tokenization: a model's `tokenizer.json`, or the standard BERT WordPiece pipeline from `vocab.txt`.

use tokenizers::models::wordpiece::WordPiece;
use tokenizers::normalizers::BertNormalizer;
use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
use tokenizers::processors::bert::BertProcessing;
use tokenizers::{Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

use super::model_dir::ModelDir;
use crate::{Error, Result};

/// A text's tokens as byte ranges in it, and how many fit in one encoder input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenSpans {
    /// Byte range of each token in the text, in order; special tokens left out, none cut.
    pub spans: Vec<std::ops::Range<usize>>,
    /// Tokens one input holds besides the special tokens (and the document prefix's): the rest
    /// of a longer text is cut.
    pub capacity: usize,
}

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
            (Some(json), _) => Tokenizer::from_file(json)
                .map_err(|e| Error::Model(format!("{}: cannot read the tokenizer: {e}", json.display())))?,
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
        let empty = inner.encode("", true).map_err(|e| Error::Model(format!("tokenizer cannot encode: {e}")))?;
        let mut whole = inner.clone();
        whole.with_truncation(None).map_err(|e| Error::Model(format!("tokenizer without a length limit: {e}")))?;
        Ok(TextTokenizer { special_count: empty.get_ids().len(), inner, whole, max_length })
    }

    /// The maximum number of tokens, special tokens included.
    pub fn max_length(&self) -> usize {
        self.max_length
    }

    /// Every token of `text` (special tokens left out, none cut) as its byte range in `text`,
    /// and how many of them one input holds.
    pub fn token_spans(&self, text: &str) -> Result<TokenSpans> {
        let enc = self.whole.encode(text, false).map_err(|e| Error::InvalidInput(format!("cannot tokenize: {e}")))?;
        Ok(TokenSpans {
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
        // Only the start of a long text can reach the encoder: tokenize a prefix that surely
        // holds more tokens than one input takes, not the whole text (a 1 GB text would cost
        // gigabytes), and a longer one only when it did not fill the input.
        let window = self.first_window();
        let prefixes: Vec<&str> = texts.iter().map(|t| prefix_before_space(t, window)).collect();
        // One text (a query) is tokenized on this thread: no copy of the list, no thread hand-off.
        let mut encodings = match prefixes.as_slice() {
            [one] => self.inner.encode(*one, true).map(|e| vec![e]),
            _ => self.inner.encode_batch(prefixes.clone(), true),
        }
        .map_err(|e| Error::InvalidInput(format!("cannot tokenize: {e}")))?;
        for ((enc, prefix), text) in encodings.iter_mut().zip(&prefixes).zip(texts) {
            if prefix.len() < text.len() && enc.get_overflowing().is_empty() {
                *enc = self.encode_growing(text, window.saturating_mul(2))?;
            }
        }
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
                Ok(Tokens { truncated: !enc.get_overflowing().is_empty(), ids: enc.get_ids().to_vec() })
            })
            .collect()
    }
}

/// The standard BERT tokenizer: BERT normaliser, BERT pre-tokenizer, WordPiece, [CLS] … [SEP].
impl TextTokenizer {
    /// Bytes of a text tokenized first: far more than one input's tokens need (a token is
    /// rarely longer than 8 bytes).
    fn first_window(&self) -> usize {
        self.max_length.saturating_mul(16).max(1024)
    }

    /// `text` encoded for one input from prefixes of `window` bytes and more, doubled until the
    /// input is full or the prefix is the whole text.
    fn encode_growing(&self, text: &str, mut window: usize) -> Result<tokenizers::Encoding> {
        loop {
            let prefix = prefix_before_space(text, window);
            let enc =
                self.inner.encode(prefix, true).map_err(|e| Error::InvalidInput(format!("cannot tokenize: {e}")))?;
            if prefix.len() == text.len() || !enc.get_overflowing().is_empty() {
                return Ok(enc);
            }
            window = window.saturating_mul(2);
        }
    }
}

/// The longest prefix of `text` of at most `window` bytes that ends before a whitespace
/// character (the first such prefix past `window` if there is none within; the whole text if
/// it is no longer or has no whitespace to cut at).
///
/// Tokenizers split words at whitespace before anything else (BERT's WordPiece, byte-level BPE,
/// SentencePiece's metaspace), and normalise character by character, so the tokens of such a
/// prefix are the first tokens of the whole text: when the prefix already overflows one input,
/// the input is the same as the whole text's.
fn prefix_before_space(text: &str, window: usize) -> &str {
    if text.len() <= window {
        return text;
    }
    let mut end = window;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let cut = match text[..end].rfind(char::is_whitespace) {
        Some(i) if i > 0 => Some(i),
        _ => text[end..].find(char::is_whitespace).map(|i| end + i),
    };
    match cut {
        Some(i) if i > 0 => &text[..i],
        _ => text,
    }
}

fn bert_wordpiece(vocab: &std::path::Path, lowercase: bool) -> Result<Tokenizer> {
    let vocab_str = vocab.to_string_lossy().into_owned();
    let wordpiece = WordPiece::from_file(&vocab_str)
        .unk_token("[UNK]".into())
        .build()
        .map_err(|e| Error::Model(format!("{}: not a WordPiece vocabulary: {e}", vocab.display())))?;
    let special = |t: &str| {
        wordpiece_id(&wordpiece, t)
            .ok_or_else(|| Error::Model(format!("{}: the vocabulary has no {t} token", vocab.display())))
    };
    let (cls, sep) = (special("[CLS]")?, special("[SEP]")?);
    let mut tokenizer = Tokenizer::new(wordpiece);
    tokenizer
        .with_normalizer(Some(BertNormalizer::new(true, true, None, lowercase)))
        .map_err(|e| Error::Model(format!("{}: {e}", vocab.display())))?
        .with_pre_tokenizer(Some(BertPreTokenizer))
        .with_post_processor(Some(BertProcessing::new(("[SEP]".into(), sep), ("[CLS]".into(), cls))));
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
    fn long_texts_are_tokenized_by_prefix_with_the_same_result() {
        let Some(dir) = default_dir() else { return };
        let mut words = Vec::new();
        let mut x = 12345u64;
        for i in 0..6000 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let w = ["electroencephalography", "Café", "déjà-vu", "a", "3.14", "«quoted»!", "漢字", "the"]
                [(x >> 33) as usize % 8];
            words.push(if i % 97 == 0 { format!("{w}\n\t ") } else { w.to_string() });
        }
        let long = words.join(" ");
        let giant_word = format!("start {} end", "x".repeat(50_000));
        let space_tail = format!("just a few words{}", " ".repeat(100_000));
        let short_then_spaces = format!("{}{}", "word ".repeat(40), " \n".repeat(30_000));
        for max_length in [8, 128, 512] {
            let tok = TextTokenizer::load(&dir, max_length).unwrap();
            let window = tok.first_window();
            let at_window = format!("{} tail words here", "y".repeat(window));
            let mut cut = window + 7;
            while !long.is_char_boundary(cut) {
                cut += 1;
            }
            let texts =
                [long.as_str(), &giant_word, &space_tail, &short_then_spaces, &at_window, "short text", &long[..cut]];
            let bounded = tok.tokenize(&texts).unwrap();
            for (text, got) in texts.iter().zip(&bounded) {
                // The reference: the whole text through the tokenizer, cut at max_length by it.
                let whole = tok.inner.encode(*text, true).unwrap();
                let expected = Tokens { ids: whole.get_ids().to_vec(), truncated: !whole.get_overflowing().is_empty() };
                assert_eq!(got, &expected, "max_length {max_length}, text of {} bytes", text.len());
            }
        }
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

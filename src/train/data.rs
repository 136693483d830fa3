//! Training data: a sentence-per-line corpus (unsupervised SimCSE), NLI triplets in CSV
//! (supervised SimCSE), and reproducible shuffling into batches.

use std::path::Path;

use rand::seq::SliceRandom;
use rand::SeedableRng;

use crate::{Error, Result};

/// A premise with its entailment (positive) and contradiction (hard negative).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Triplet {
    /// The premise (`sent0`).
    pub anchor: String,
    /// The entailed hypothesis (`sent1`).
    pub positive: String,
    /// The contradicting hypothesis (`hard_neg`).
    pub hard_negative: String,
}

fn read_text(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| Error::io(path, e))
}

/// Reads one sentence a line, skipping blank lines.
pub fn read_corpus(path: &Path) -> Result<Vec<String>> {
    let sentences: Vec<String> =
        read_text(path)?.lines().map(|l| l.trim()).filter(|l| !l.is_empty()).map(str::to_string).collect();
    if sentences.is_empty() {
        return Err(Error::Data {
            path: path.into(),
            line: 1,
            message: "no sentences: the corpus must hold one sentence a line".into(),
        });
    }
    Ok(sentences)
}

pub use crate::eval::text_file::{parse_csv, CsvRecord};

/// Reads `sent0,sent1,hard_neg` triplets (a header line, then CSV records).
pub fn read_triplets(path: &Path) -> Result<Vec<Triplet>> {
    let text = read_text(path)?;
    let records = parse_csv(&text).map_err(|(line, message)| Error::Data { path: path.into(), line, message })?;
    let mut records = records.into_iter().filter(|(_, f)| !(f.len() == 1 && f[0].trim().is_empty()));
    let expected = ["sent0", "sent1", "hard_neg"];
    match records.next() {
        Some((_, header)) if header.iter().map(|h| h.trim()).eq(expected) => {}
        Some((line, header)) => {
            return Err(Error::Data {
                path: path.into(),
                line,
                message: format!("header is {header:?}; the file must start with the line `sent0,sent1,hard_neg`"),
            })
        }
        None => {
            return Err(Error::Data {
                path: path.into(),
                line: 1,
                message: "empty file: expected a `sent0,sent1,hard_neg` header and triplets".into(),
            })
        }
    }
    let triplets = records
        .map(|(line, f)| match <[String; 3]>::try_from(f) {
            Ok([anchor, positive, hard_negative]) => Ok(Triplet { anchor, positive, hard_negative }),
            Err(f) => Err(Error::Data {
                path: path.into(),
                line,
                message: format!("{} fields; a triplet has 3 (quote fields that contain commas)", f.len()),
            }),
        })
        .collect::<Result<Vec<_>>>()?;
    if triplets.is_empty() {
        return Err(Error::Data { path: path.into(), line: 2, message: "no triplets after the header".into() });
    }
    Ok(triplets)
}

/// The example indices of one epoch, shuffled by `seed` and `epoch` and cut into batches
/// (the last one may be smaller). The same seed and epoch always give the same batches.
pub fn epoch_batches(examples: usize, batch_size: usize, seed: u64, epoch: usize) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..examples).collect();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ epoch as u64);
    order.shuffle(&mut rng);
    order.chunks(batch_size.max(1)).map(|c| c.to_vec()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_handles_quotes_commas_and_line_breaks() {
        let text = "a,b,c\n\"x, y\",\"say \"\"hi\"\"\",z\r\n\"two\nlines\",p,q";
        let r = parse_csv(text).unwrap();
        assert_eq!(r.len(), 3);
        assert_eq!(r[1], (2, vec!["x, y".to_string(), "say \"hi\"".into(), "z".into()]));
        assert_eq!(r[2], (3, vec!["two\nlines".to_string(), "p".into(), "q".into()]));
        assert!(parse_csv("\"open,b").is_err());
        assert!(parse_csv("ab\"c,d").is_err());
    }

    #[test]
    fn triplets_need_the_header_and_three_fields() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.csv");
        std::fs::write(&good, "sent0,sent1,hard_neg\n\"A man , outside .\",A man .,A woman .\n").unwrap();
        let t = read_triplets(&good).unwrap();
        assert_eq!(
            t,
            vec![Triplet {
                anchor: "A man , outside .".into(),
                positive: "A man .".into(),
                hard_negative: "A woman .".into(),
            }]
        );
        let bad = dir.path().join("bad.csv");
        std::fs::write(&bad, "sent0,sent1,hard_neg\nonly,two\n").unwrap();
        let err = read_triplets(&bad).unwrap_err().to_string();
        assert!(err.contains(":2:") && err.contains("2 fields"), "{err}");
        std::fs::write(&bad, "premise,hypothesis\n").unwrap();
        assert!(read_triplets(&bad).unwrap_err().to_string().contains("header"));
    }

    #[test]
    fn batches_are_a_reproducible_permutation() {
        let a = epoch_batches(10, 4, 7, 0);
        assert_eq!(a, epoch_batches(10, 4, 7, 0));
        assert_ne!(a, epoch_batches(10, 4, 7, 1));
        assert_eq!(a.iter().map(Vec::len).collect::<Vec<_>>(), vec![4, 4, 2]);
        let mut all: Vec<usize> = a.concat();
        all.sort();
        assert_eq!(all, (0..10).collect::<Vec<_>>());
    }
}

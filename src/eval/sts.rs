//! STS benchmarks (STS12–16, STS-B, SICK-R): loading and Spearman scoring.
//!
//! Paths are relative to the benchmark data folder (`--data`); see its README for the layout
//! and for the parsing traps handled here.

use std::collections::HashSet;
use std::fmt;
use std::path::Path;
use std::str::FromStr;

use super::spearman::spearman;
use super::text_file::read_lines;
use crate::{Error, Result};

/// One STS benchmark.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StsSet {
    /// SemEval 2012 STS (test only).
    Sts12,
    /// SemEval 2013 STS (test only).
    Sts13,
    /// SemEval 2014 STS (test only).
    Sts14,
    /// SemEval 2015 STS (test only).
    Sts15,
    /// SemEval 2016 STS (test only).
    Sts16,
    /// The STS benchmark (train, dev, test).
    StsB,
    /// SICK relatedness (train, dev, test).
    SickR,
}

impl StsSet {
    /// The name papers use: "STS12".."STS16", "STS-B", "SICK-R".
    pub fn name(self) -> &'static str {
        match self {
            StsSet::Sts12 => "STS12",
            StsSet::Sts13 => "STS13",
            StsSet::Sts14 => "STS14",
            StsSet::Sts15 => "STS15",
            StsSet::Sts16 => "STS16",
            StsSet::StsB => "STS-B",
            StsSet::SickR => "SICK-R",
        }
    }

    /// Every set, in the order papers list them.
    pub fn all() -> [StsSet; 7] {
        [StsSet::Sts12, StsSet::Sts13, StsSet::Sts14, StsSet::Sts15, StsSet::Sts16, StsSet::StsB, StsSet::SickR]
    }

    /// The splits the set has, in train/dev/test order.
    fn splits(self) -> &'static [Split] {
        match self {
            StsSet::StsB | StsSet::SickR => &[Split::Train, Split::Dev, Split::Test],
            _ => &[Split::Test],
        }
    }
}

impl fmt::Display for StsSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for StsSet {
    type Err = Error;

    /// Accepts the paper names case-insensitively, plus "stsb", "sickr" and "sick".
    fn from_str(s: &str) -> Result<Self> {
        let lower = s.trim().to_ascii_lowercase();
        let alias = match lower.as_str() {
            "stsb" | "sts-b" => Some(StsSet::StsB),
            "sickr" | "sick-r" | "sick" => Some(StsSet::SickR),
            _ => None,
        };
        alias.or_else(|| StsSet::all().into_iter().find(|set| set.name().eq_ignore_ascii_case(&lower))).ok_or_else(
            || {
                let valid: Vec<&str> = StsSet::all().iter().map(|s| s.name()).collect();
                Error::InvalidInput(format!(
                    "unknown STS set `{s}`; valid: {} (also stsb, sickr, sick)",
                    valid.join(", ")
                ))
            },
        )
    }
}

/// Which part of a benchmark to load.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Split {
    /// The training split.
    Train,
    /// The development split.
    Dev,
    /// The test split.
    Test,
    /// Every split the set has (train + dev + test, or just test for STS12–16).
    All,
}

impl Split {
    /// Lower-case name: "train", "dev", "test", "all".
    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Dev => "dev",
            Split::Test => "test",
            Split::All => "all",
        }
    }
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Split {
    type Err = Error;

    /// Accepts "train", "dev" (or SICK's "trial"), "test", "all", case-insensitively.
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "train" => Ok(Split::Train),
            "dev" | "trial" => Ok(Split::Dev),
            "test" => Ok(Split::Test),
            "all" => Ok(Split::All),
            _ => Err(Error::InvalidInput(format!("unknown split `{s}`; valid: train, dev (or trial), test, all"))),
        }
    }
}

/// A sentence pair and its gold similarity.
#[derive(Clone, Debug, PartialEq)]
pub struct StsPair {
    /// The first sentence.
    pub a: String,
    /// The second sentence.
    pub b: String,
    /// The gold similarity (0–5).
    pub score: f64,
}

/// A named part of a benchmark (an STS source such as "headlines", or one file).
#[derive(Clone, Debug, PartialEq)]
pub struct StsSubset {
    /// Its name.
    pub name: String,
    /// Its pairs.
    pub pairs: Vec<StsPair>,
}

/// The scored pairs of one benchmark split, grouped in subsets.
#[derive(Clone, Debug, PartialEq)]
pub struct StsDataset {
    /// The benchmark.
    pub set: StsSet,
    /// The split loaded.
    pub split: Split,
    /// Its subsets.
    pub subsets: Vec<StsSubset>,
}

impl StsDataset {
    /// Every sentence of both sides, deduplicated, in first-seen order.
    pub fn sentences(&self) -> Vec<&str> {
        let mut seen = HashSet::new();
        self.pairs().flat_map(|p| [p.a.as_str(), p.b.as_str()]).filter(|s| seen.insert(*s)).collect()
    }

    /// Number of scored pairs over all subsets.
    pub fn len(&self) -> usize {
        self.subsets.iter().map(|s| s.pairs.len()).sum()
    }

    /// Whether there are no pairs.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every pair in dataset order (subsets concatenated): the order `score` expects.
    pub fn pairs(&self) -> impl Iterator<Item = &StsPair> {
        self.subsets.iter().flat_map(|s| s.pairs.iter())
    }
}

/// STS12–16 subsets, listed explicitly: the folders hold files that must not be read
/// (STS12's `ALL` concatenation, STS13's `SMT` gold without input).
fn sts_year_subsets(set: StsSet) -> (&'static str, &'static [&'static str]) {
    match set {
        StsSet::Sts12 => ("STS12-en-test", &["MSRpar", "MSRvid", "SMTeuroparl", "surprise.OnWN", "surprise.SMTnews"]),
        StsSet::Sts13 => ("STS13-en-test", &["FNWN", "headlines", "OnWN"]),
        StsSet::Sts14 => ("STS14-en-test", &["deft-forum", "deft-news", "headlines", "images", "OnWN", "tweet-news"]),
        StsSet::Sts15 => ("STS15-en-test", &["answers-forums", "answers-students", "belief", "headlines", "images"]),
        StsSet::Sts16 => {
            ("STS16-en-test", &["answer-answer", "headlines", "plagiarism", "postediting", "question-question"])
        }
        StsSet::StsB | StsSet::SickR => ("", &[]),
    }
}

/// Loads one split of one benchmark from the data folder.
pub fn load(data_dir: &Path, set: StsSet, split: Split) -> Result<StsDataset> {
    let splits: Vec<Split> = match split {
        Split::All => set.splits().to_vec(),
        one if set.splits().contains(&one) => vec![one],
        other => {
            return Err(Error::InvalidInput(format!(
                "{} has no {other} split (only test); use --split test",
                set.name()
            )))
        }
    };
    let mut subsets = Vec::new();
    for one in splits {
        match set {
            StsSet::StsB => {
                let path = data_dir.join("senteval/STS/STSBenchmark").join(format!("sts-{}.csv", one.name()));
                subsets.push(load_stsb_file(&path)?);
            }
            StsSet::SickR => {
                let file = match one {
                    Split::Train => "SICK_train",
                    Split::Dev => "SICK_trial",
                    _ => "SICK_test_annotated",
                };
                let path = data_dir.join("senteval/SICK").join(format!("{file}.txt"));
                subsets.push(load_sick_file(&path)?);
            }
            _ => {
                let (folder, names) = sts_year_subsets(set);
                let dir = data_dir.join("senteval/STS").join(folder);
                for name in names {
                    subsets.push(load_sts_year_subset(&dir, name)?);
                }
            }
        }
    }
    Ok(StsDataset { set, split, subsets })
}

fn data_error(path: &Path, line: usize, message: String) -> Error {
    Error::Data { path: path.to_path_buf(), line, message }
}

fn parse_score(path: &Path, line: usize, field: &str) -> Result<f64> {
    match field.trim().parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err(data_error(path, line, format!("gold score `{field}` is not a number"))),
    }
}

/// One STS12–16 subset: `STS.input.<name>.txt` (two TAB-separated sentences a line) and
/// `STS.gs.<name>.txt` (one score a line; blank = unscored, dropped).
fn load_sts_year_subset(dir: &Path, name: &str) -> Result<StsSubset> {
    let input_path = dir.join(format!("STS.input.{name}.txt"));
    let gold_path = dir.join(format!("STS.gs.{name}.txt"));
    let inputs = read_lines(&input_path)?;
    let golds = read_lines(&gold_path)?;
    if inputs.len() != golds.len() {
        return Err(data_error(
            &gold_path,
            golds.len().min(inputs.len()) + 1,
            format!(
                "{} gold lines but {} input lines in {}; the two files must be line-aligned",
                golds.len(),
                inputs.len(),
                input_path.display()
            ),
        ));
    }
    let mut pairs = Vec::new();
    for (i, (input, gold)) in inputs.iter().zip(&golds).enumerate() {
        let line = i + 1;
        if gold.trim().is_empty() {
            continue;
        }
        let score = parse_score(&gold_path, line, gold)?;
        let mut fields = input.split('\t');
        match (fields.next(), fields.next(), fields.next()) {
            (Some(a), Some(b), None) => pairs.push(StsPair { a: a.to_string(), b: b.to_string(), score }),
            _ => return Err(data_error(&input_path, line, "expected two TAB-separated sentences".to_string())),
        }
    }
    Ok(StsSubset { name: name.to_string(), pairs })
}

/// One STS-B file (SentEval copy or original): TAB-separated, score in field 5, sentences in
/// fields 6 and 7; the original's extra trailing fields are ignored. Never CSV-parsed: quotes
/// are text.
fn load_stsb_file(path: &Path) -> Result<StsSubset> {
    let mut pairs = Vec::new();
    for (i, text) in read_lines(path)?.iter().enumerate() {
        let fields: Vec<&str> = text.split('\t').collect();
        if fields.len() < 7 {
            return Err(data_error(
                path,
                i + 1,
                format!(
                    "expected at least 7 TAB-separated fields (genre, file, year, id, score, \
                     sentence1, sentence2), found {}",
                    fields.len()
                ),
            ));
        }
        pairs.push(StsPair {
            a: fields[5].to_string(),
            b: fields[6].to_string(),
            score: parse_score(path, i + 1, fields[4])?,
        });
    }
    Ok(StsSubset { name: file_stem(path), pairs })
}

/// One SICK file: a header line, then pair_ID, sentence_A, sentence_B, relatedness_score, ...
fn load_sick_file(path: &Path) -> Result<StsSubset> {
    let mut pairs = Vec::new();
    for (i, text) in read_lines(path)?.iter().enumerate().skip(1) {
        let fields: Vec<&str> = text.split('\t').collect();
        if fields.len() < 4 {
            return Err(data_error(
                path,
                i + 1,
                format!(
                    "expected at least 4 TAB-separated fields (pair_ID, sentence_A, sentence_B, \
                     relatedness_score), found {}",
                    fields.len()
                ),
            ));
        }
        pairs.push(StsPair {
            a: fields[1].to_string(),
            b: fields[2].to_string(),
            score: parse_score(path, i + 1, fields[3])?,
        });
    }
    Ok(StsSubset { name: file_stem(path), pairs })
}

fn file_stem(path: &Path) -> String {
    path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
}

/// Spearman ×100 under the two aggregations papers use.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StsScore {
    /// One Spearman over every pair concatenated (SimCSE, MTEB).
    pub all: f64,
    /// Per-subset Spearman averaged weighted by subset size (BERT-flow, BERT-whitening).
    pub wmean: f64,
}

/// Scores similarities against gold: `sims` holds one cosine per pair in dataset order.
///
/// If `sims` does not have exactly one value per pair both fields are NaN (no partial score
/// that could be mistaken for a real one); [`try_score`] reports that as an error instead.
pub fn score(ds: &StsDataset, sims: &[f64]) -> StsScore {
    try_score(ds, sims).unwrap_or(StsScore { all: f64::NAN, wmean: f64::NAN })
}

/// Like [`score`], but a wrong number of similarities is an error.
pub fn try_score(ds: &StsDataset, sims: &[f64]) -> Result<StsScore> {
    if sims.len() != ds.len() {
        return Err(Error::InvalidInput(format!(
            "{} {}: got {} similarities for {} pairs; pass one per pair in dataset order",
            ds.set,
            ds.split,
            sims.len(),
            ds.len()
        )));
    }
    let gold: Vec<f64> = ds.pairs().map(|p| p.score).collect();
    let all = spearman(sims, &gold) * 100.0;
    let (mut weighted, mut total, mut start) = (0.0, 0usize, 0usize);
    for subset in &ds.subsets {
        let end = start + subset.pairs.len();
        if end > start {
            weighted += spearman(&sims[start..end], &gold[start..end]) * subset.pairs.len() as f64;
            total += subset.pairs.len();
        }
        start = end;
    }
    let wmean = if total == 0 { 0.0 } else { weighted / total as f64 * 100.0 };
    Ok(StsScore { all, wmean })
}

/// Every sentence (all splits, both sides, deduplicated, first-seen order) of the given sets:
/// the "target" corpus that whitening and BERT-flow are fitted on.
pub fn target_sentences(data_dir: &Path, sets: &[StsSet]) -> Result<Vec<String>> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for &set in sets {
        let ds = load(data_dir, set, Split::All)?;
        for s in ds.sentences() {
            if seen.insert(s.to_string()) {
                out.push(s.to_string());
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::data_dir;

    fn pair(a: &str, b: &str, score: f64) -> StsPair {
        StsPair { a: a.into(), b: b.into(), score }
    }

    fn two_subsets() -> StsDataset {
        StsDataset {
            set: StsSet::Sts12,
            split: Split::Test,
            subsets: vec![
                StsSubset {
                    name: "one".into(),
                    pairs: vec![pair("a", "b", 1.0), pair("b", "c", 2.0), pair("c", "a", 3.0)],
                },
                StsSubset { name: "two".into(), pairs: vec![pair("d", "a", 1.0), pair("e", "e", 2.0)] },
            ],
        }
    }

    #[test]
    fn score_all_and_wmean_hand_computed() {
        let ds = two_subsets();
        let sims = [0.1, 0.2, 0.3, 0.9, 0.8];
        let s = score(&ds, &sims);
        // wmean: subset one ρ = 1 (3 pairs), subset two ρ = −1 (2 pairs) → (3 − 2)/5 = 0.2
        assert!((s.wmean - 20.0).abs() < 1e-9, "{s:?}");
        // all: gold ranks (1.5,3.5,5,1.5,3.5), sim ranks (1,2,3,5,4), both means 3;
        // centred products −1.5·−2 + .5·−1 + 2·0 + −1.5·2 + .5·1 = 0 → ρ = 0
        assert!(s.all.abs() < 1e-9, "{s:?}");
    }

    #[test]
    fn score_with_wrong_length_is_nan_or_error() {
        let ds = two_subsets();
        assert!(score(&ds, &[0.1, 0.2]).all.is_nan());
        assert!(try_score(&ds, &[0.1, 0.2]).is_err());
    }

    #[test]
    fn sentences_are_deduplicated_in_first_seen_order() {
        assert_eq!(two_subsets().sentences(), vec!["a", "b", "c", "d", "e"]);
        assert_eq!(two_subsets().len(), 5);
    }

    #[test]
    fn names_parse_case_insensitively() {
        for set in StsSet::all() {
            assert_eq!(set.name().to_lowercase().parse::<StsSet>().unwrap(), set);
        }
        assert_eq!("stsb".parse::<StsSet>().unwrap(), StsSet::StsB);
        assert_eq!("SICK".parse::<StsSet>().unwrap(), StsSet::SickR);
        assert_eq!("sickr".parse::<StsSet>().unwrap(), StsSet::SickR);
        let msg = "sts17".parse::<StsSet>().unwrap_err().to_string();
        assert!(msg.contains("STS12") && msg.contains("SICK-R"), "{msg}");
        assert_eq!("trial".parse::<Split>().unwrap(), Split::Dev);
        assert_eq!("ALL".parse::<Split>().unwrap(), Split::All);
        assert!("validation".parse::<Split>().is_err());
    }

    #[test]
    fn invalid_utf8_is_a_data_error_with_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sts-test.csv");
        std::fs::write(&path, b"g\tf\t2012\t1\t2.5\ta b\tc d\ng\tf\t2012\t2\t1.0\tbad \xfe\tx\n").unwrap();
        match load_stsb_file(&path).unwrap_err() {
            Error::Data { path: p, line, .. } => {
                assert_eq!(p, path);
                assert_eq!(line, 2);
            }
            other => panic!("unexpected {other}"),
        }
    }

    #[test]
    fn malformed_lines_are_data_errors_with_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("SICK_test_annotated.txt");
        std::fs::write(&path, "pair_ID\tA\tB\tscore\r\n1\ta\tb\t3.5\r\n2\tonly two\r\n").unwrap();
        match load_sick_file(&path).unwrap_err() {
            Error::Data { line, .. } => assert_eq!(line, 3),
            other => panic!("unexpected {other}"),
        }
        std::fs::write(&path, "pair_ID\tA\tB\tscore\n1\ta\tb\tfive\n").unwrap();
        match load_sick_file(&path).unwrap_err() {
            Error::Data { line, message, .. } => {
                assert_eq!(line, 2);
                assert!(message.contains("five"));
            }
            other => panic!("unexpected {other}"),
        }
        // STS year subset: a line with three TAB fields, and gold/input length mismatch.
        std::fs::write(dir.path().join("STS.input.x.txt"), "a\tb\na\tb\tc\n").unwrap();
        std::fs::write(dir.path().join("STS.gs.x.txt"), "1\n2\n").unwrap();
        match load_sts_year_subset(dir.path(), "x").unwrap_err() {
            Error::Data { line, .. } => assert_eq!(line, 2),
            other => panic!("unexpected {other}"),
        }
        std::fs::write(dir.path().join("STS.gs.x.txt"), "1\n").unwrap();
        assert!(load_sts_year_subset(dir.path(), "x").is_err());
    }

    #[test]
    fn sts_year_blank_gold_lines_are_dropped_and_crlf_stripped() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("STS.input.y.txt"), "a\tb\r\nc\td\r\ne\tf\r\n").unwrap();
        std::fs::write(dir.path().join("STS.gs.y.txt"), "4.0\n\n 1.5 \n").unwrap();
        let subset = load_sts_year_subset(dir.path(), "y").unwrap();
        assert_eq!(subset.pairs, vec![pair("a", "b", 4.0), pair("e", "f", 1.5)]);
    }

    #[test]
    fn missing_data_says_where_data_should_be() {
        let msg = load(Path::new("/nonexistent/data"), StsSet::StsB, Split::Test).unwrap_err().to_string();
        assert!(msg.contains("sts-test.csv") && msg.contains("--data"), "{msg}");
        let msg = load(Path::new("/x"), StsSet::Sts13, Split::Train).unwrap_err().to_string();
        assert!(msg.contains("STS13") && msg.contains("test"), "{msg}");
    }

    #[test]
    fn pair_counts_match_the_data_readme() {
        let Some(data) = data_dir("senteval") else { return };
        let expect = [
            (StsSet::Sts12, Split::Test, 3108, 5),
            (StsSet::Sts13, Split::Test, 1500, 3),
            (StsSet::Sts14, Split::Test, 3750, 6),
            (StsSet::Sts15, Split::Test, 3000, 5),
            (StsSet::Sts16, Split::Test, 1186, 5),
            (StsSet::Sts16, Split::All, 1186, 5),
            (StsSet::StsB, Split::Train, 5749, 1),
            (StsSet::StsB, Split::Dev, 1500, 1),
            (StsSet::StsB, Split::Test, 1379, 1),
            (StsSet::StsB, Split::All, 8628, 3),
            (StsSet::SickR, Split::Train, 4500, 1),
            (StsSet::SickR, Split::Dev, 500, 1),
            (StsSet::SickR, Split::Test, 4927, 1),
            (StsSet::SickR, Split::All, 9927, 3),
        ];
        for (set, split, pairs, subsets) in expect {
            let ds = load(&data, set, split).unwrap();
            assert_eq!(ds.len(), pairs, "{set} {split}");
            assert_eq!(ds.subsets.len(), subsets, "{set} {split}");
            for p in ds.pairs() {
                assert!(!p.a.contains(['\t', '\r']) && !p.b.contains(['\t', '\r']));
                assert!((0.0..=5.0).contains(&p.score), "{set} {split}: {}", p.score);
            }
        }
        // A sentence with a double quote stays one sentence (no CSV quote merging).
        let stsb = load(&data, StsSet::StsB, Split::All).unwrap();
        assert!(stsb.pairs().any(|p| p.a.contains('"') || p.b.contains('"')));
    }

    #[test]
    fn target_sentences_cover_every_split() {
        let Some(data) = data_dir("senteval") else { return };
        let sick = target_sentences(&data, &[StsSet::SickR]).unwrap();
        let test_only = load(&data, StsSet::SickR, Split::Test).unwrap();
        assert!(sick.len() > test_only.sentences().len());
        let set: HashSet<&str> = sick.iter().map(String::as_str).collect();
        assert_eq!(set.len(), sick.len(), "duplicates in target sentences");
        assert!(test_only.sentences().iter().all(|s| set.contains(s)));
    }
}

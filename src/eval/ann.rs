//! The ANN benchmark set: base sentences, queries, exact neighbours, and recall@k.

use std::collections::HashSet;
use std::path::Path;

use super::text_file::{self, read_lines};
use crate::{Error, Result};

/// Reads the exact neighbours file: line i holds query i's nearest base sentences as
/// TAB-separated 0-based line numbers of `sentences.txt`, best first.
pub fn load_ann_gt(path: &Path) -> Result<Vec<Vec<usize>>> {
    read_lines(path)?
        .iter()
        .enumerate()
        .map(|(i, line)| {
            line.split('\t')
                .map(|field| {
                    field.trim().parse::<usize>().map_err(|_| Error::Data {
                        path: path.to_path_buf(),
                        line: i + 1,
                        message: format!(
                            "`{field}` is not a line number; expected TAB-separated 0-based \
                             line numbers of sentences.txt"
                        ),
                    })
                })
                .collect()
        })
        .collect()
}

/// Mean over queries of |found top k ∩ true top k| / min(k, true neighbours).
///
/// Every query of `truth` counts: a query missing from `found` scores 0, so a short result
/// list cannot raise recall. 0.0 when `k` is 0 or there are no queries.
pub fn recall_at_k(found: &[Vec<usize>], truth: &[Vec<usize>], k: usize) -> f64 {
    if k == 0 || truth.is_empty() {
        return 0.0;
    }
    let total: f64 = truth
        .iter()
        .enumerate()
        .map(|(q, true_ids)| {
            let want: HashSet<usize> = true_ids.iter().take(k).copied().collect();
            if want.is_empty() {
                return 0.0;
            }
            let got: HashSet<usize> = found.get(q).map(|ids| ids.iter().take(k).copied().collect()).unwrap_or_default();
            got.intersection(&want).count() as f64 / want.len() as f64
        })
        .sum();
    total / truth.len() as f64
}

/// Reads a gzip-compressed text file, one item a line (e.g. `sentences.txt.gz`), whatever
/// its name.
pub fn load_lines_gz(path: &Path) -> Result<Vec<String>> {
    let raw = text_file::read_raw(path)?;
    text_file::split_lines(path, &text_file::gunzip(path, &raw)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::data_dir;

    #[test]
    fn recall_hand_computed() {
        let truth = vec![vec![1, 2, 3, 4], vec![5, 6, 7, 8]];
        // q0 top2 {1,9} ∩ {1,2} = 1 → 0.5; q1 top2 {6,5} ∩ {5,6} = 2 → 1.0
        let found = vec![vec![1, 9, 2], vec![6, 5, 0]];
        assert!((recall_at_k(&found, &truth, 2) - 0.75).abs() < 1e-12);
        // top3: q0 {1,9,2} ∩ {1,2,3} = 2 → 2/3; q1 {6,5,0} ∩ {5,6,7} = 2 → 2/3
        assert!((recall_at_k(&found, &truth, 3) - 2.0 / 3.0).abs() < 1e-12);
        // a missing query scores 0
        assert!((recall_at_k(&found[..1], &truth, 2) - 0.25).abs() < 1e-12);
        assert_eq!(recall_at_k(&truth, &truth, 4), 1.0);
        assert_eq!(recall_at_k(&found, &truth, 0), 0.0);
    }

    #[test]
    fn gt_parse_errors_name_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gt.tsv");
        std::fs::write(&path, "3\t1\t2\n4\tx\t5\n").unwrap();
        match load_ann_gt(&path).unwrap_err() {
            Error::Data { line, .. } => assert_eq!(line, 2),
            other => panic!("unexpected {other}"),
        }
        std::fs::write(&path, "3\t1\t2\n0\t4\t5\n").unwrap();
        assert_eq!(load_ann_gt(&path).unwrap(), vec![vec![3, 1, 2], vec![0, 4, 5]]);
    }

    #[test]
    fn loads_the_ann_set() {
        let Some(data) = data_dir("ann") else { return };
        let dir = data.join("ann");
        let sentences = load_lines_gz(&dir.join("sentences.txt.gz")).unwrap();
        let queries = read_lines(&dir.join("queries.txt")).unwrap();
        let gt = load_ann_gt(&dir.join("gt_top100.tsv")).unwrap();
        assert_eq!(sentences.len(), 100_000);
        assert_eq!(queries.len(), 1_000);
        assert_eq!(gt.len(), queries.len());
        assert!(gt.iter().all(|row| row.len() == 100));
        assert!(gt.iter().flatten().all(|&i| i < sentences.len()));
        // neighbours of a query are distinct base sentences
        assert!(gt.iter().all(|row| row.iter().collect::<HashSet<_>>().len() == row.len()));
        let base: HashSet<&str> = sentences.iter().map(String::as_str).collect();
        assert_eq!(base.len(), sentences.len(), "base sentences are distinct");
        assert!(queries.iter().all(|q| !base.contains(q.as_str())));
        // queries.txt is not gzip
        assert!(matches!(load_lines_gz(&dir.join("queries.txt")), Err(Error::Data { .. })));
    }
}

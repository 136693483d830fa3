//! Length-sorted batching: texts of similar length go together, so padding per batch costs little.

/// The indices of texts with these token counts, longest first, cut into batches: a batch that
/// starts with a text of `n` tokens holds at most `size(n)` texts (at least one).
pub fn length_batches(lengths: &[usize], size: impl Fn(usize) -> usize) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    // Stable: texts of equal length keep their input order.
    order.sort_by_key(|&i| std::cmp::Reverse(lengths[i]));
    let mut batches = Vec::new();
    let mut rest = order.as_slice();
    while let Some(&first) = rest.first() {
        let (batch, tail) = rest.split_at(size(lengths[first]).clamp(1, rest.len()));
        batches.push(batch.to_vec());
        rest = tail;
    }
    batches
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_hold_every_text_once_longest_first_and_respect_the_size() {
        let lengths = [3, 9, 1, 9, 5, 2, 7];
        // Long texts (≥ 7 tokens) two to a batch, the others three.
        let batches = length_batches(&lengths, |longest| if longest >= 7 { 2 } else { 3 });
        assert_eq!(batches, vec![vec![1, 3], vec![6, 4], vec![0, 5, 2]]);
        let mut all: Vec<usize> = batches.concat();
        all.sort();
        assert_eq!(all, (0..lengths.len()).collect::<Vec<_>>());
        // A size of 0 still makes progress, one text a batch.
        assert_eq!(length_batches(&[4, 4], |_| 0), vec![vec![0], vec![1]]);
        assert!(length_batches(&[], |_| 8).is_empty());
    }
}

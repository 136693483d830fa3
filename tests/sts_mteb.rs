//! The encoder and the STS evaluator together reproduce all-MiniLM-L6-v2's published MTEB scores.
//!
//! Needs the benchmark data (`ISOVEC_DATA`, or ../shared/data beside the checkout) and the default
//! model (`isovec model fetch`); skipped with a message otherwise, a failure under
//! `ISOVEC_REQUIRE_DATA=1`.

use isovec::encoder::{Encoder, EncoderOptions, Pooling};
use isovec::eval::sts::{Split, StsSet};
use isovec::eval::sts_table::{evaluate, StsPlan};
use isovec::test_support::{data_dir, default_model};

#[test]
fn mean_pooling_reproduces_published_mteb_scores() {
    let (Some(data), Some(model)) = (data_dir("senteval"), default_model()) else { return };
    let encoder = std::sync::Arc::new(Encoder::load(&model, EncoderOptions::default()).unwrap());
    // MTEB scores SICK-R on all 9,927 pairs (train + trial + test) and STS-B on its test split.
    let published = [
        (StsSet::Sts12, Split::Test, 72.37),
        (StsSet::Sts13, Split::Test, 80.60),
        (StsSet::Sts14, Split::Test, 75.59),
        (StsSet::Sts15, Split::Test, 85.39),
        (StsSet::Sts16, Split::Test, 78.99),
        (StsSet::StsB, Split::Test, 82.03),
        (StsSet::SickR, Split::All, 77.58),
    ];
    for split in [Split::Test, Split::All] {
        let sets: Vec<StsSet> = published.iter().filter(|p| p.1 == split).map(|p| p.0).collect();
        let plan = StsPlan { sets, split, poolings: vec![Pooling::Mean], transforms: vec![] };
        let rows = evaluate(&encoder, &data, &plan, &isovec::progress::Silent).unwrap();
        let all = rows.iter().find(|r| r.aggregation == "all" && r.transform == "none").unwrap();
        for (set, _, expected) in published.iter().filter(|p| p.1 == split) {
            let got = all.scores[set.name()];
            eprintln!("{}: {got:.2} (published {expected:.2})", set.name());
            assert!((got - expected).abs() <= 0.1, "{}: {got:.2}, published {expected:.2}", set.name());
        }
    }
}

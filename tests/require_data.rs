//! The rule for a missing input of a data- or model-backed test: a skip with one stderr line
//! naming the test, what is missing and how to get it; a failure under `ISOVEC_REQUIRE_DATA=1`.
//!
//! The parent test re-runs this binary's `probe` test with the data pointed at a folder that does
//! not exist, once with and once without `ISOVEC_REQUIRE_DATA=1`.

use std::process::Command;

use isovec::test_support::{data_dir, REQUIRE_DATA_ENV};

const PROBE_ENV: &str = "ISOVEC_REQUIRE_DATA_PROBE";

/// Asks for benchmark data that is not there; does nothing in a normal test run.
#[test]
fn probe() {
    if std::env::var_os(PROBE_ENV).is_none() {
        return;
    }
    let Some(dir) = data_dir("senteval") else { return };
    panic!("{} should not have been found", dir.display());
}

/// Runs `probe` in a child; whether it passed, its stdout and its stderr.
fn run_probe(require: Option<&str>) -> (bool, String, String) {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    // Without --nocapture: the skip line must get past libtest's capture.
    cmd.args(["--exact", "probe"]).env(PROBE_ENV, "1").env("ISOVEC_DATA", "/nonexistent/isovec-data");
    match require {
        Some(v) => cmd.env(REQUIRE_DATA_ENV, v),
        None => cmd.env_remove(REQUIRE_DATA_ENV),
    };
    let out = cmd.output().unwrap();
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

#[test]
fn missing_data_fails_only_when_required() {
    if std::env::var_os(PROBE_ENV).is_some() {
        return;
    }
    // libtest reports a failed test's panic on stdout.
    let (passed, output, _) = run_probe(Some("1"));
    assert!(!passed, "ISOVEC_REQUIRE_DATA=1 must fail the test:\n{output}");
    assert!(
        output.contains("probe: no /nonexistent/isovec-data/senteval in the benchmark data")
            && output.contains("set ISOVEC_DATA"),
        "the failure says what is missing and how to get it:\n{output}"
    );

    for require in [None, Some("0"), Some("")] {
        let (passed, stdout, stderr) = run_probe(require);
        assert!(passed, "{require:?}: a missing input is a skip:\n{stdout}{stderr}");
        let skips: Vec<&str> = stderr.lines().filter(|l| l.starts_with("skipped: ")).collect();
        assert_eq!(skips.len(), 1, "{require:?}: one stderr line says what was skipped:\n{stderr}");
        assert!(
            skips[0].contains("probe: no /nonexistent/isovec-data/senteval") && skips[0].contains("ISOVEC_DATA"),
            "{}",
            skips[0]
        );
    }
}

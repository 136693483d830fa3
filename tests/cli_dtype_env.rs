//! `$ISOVEC_DTYPE` sets `--dtype` for every command that encodes (the SQLite extension reads the
//! same variable); the flag wins over it, and an unknown name is refused with the list.
//!
//! Its own process: it sets the variable.

use clap::Parser;
use isovec::cli::common::{ModelArgs, Precision};

#[derive(Parser)]
struct Command {
    #[command(flatten)]
    model: ModelArgs,
}

fn parse(args: &[&str]) -> Result<Precision, String> {
    Command::try_parse_from(std::iter::once("isovec").chain(args.iter().copied()))
        .map(|c| c.model.dtype)
        .map_err(|e| e.to_string())
}

#[test]
fn the_variable_sets_the_precision_and_the_flag_wins() {
    std::env::remove_var("ISOVEC_DTYPE");
    assert_eq!(parse(&[]), Ok(Precision::F32));
    std::env::set_var("ISOVEC_DTYPE", "INT8");
    assert_eq!(parse(&[]), Ok(Precision::Int8));
    assert_eq!(parse(&["--dtype", "bf16"]), Ok(Precision::Bf16));
    std::env::set_var("ISOVEC_DTYPE", "int4");
    let err = parse(&[]).unwrap_err();
    assert!(err.contains("int4") && err.contains("f32, f16, bf16, int8"), "{err}");
}
